#!/usr/bin/env bash
# t1020-broker-stream: streamed chunks arrive complete, in order, one
# message per chunk, then one final; a non-streaming request of the same
# op gets no chunk.
. "$(dirname "$0")/lib.sh"
omni_setup
omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit $?
from omnitest import *
c = Conn()
N, SIZE = 200, 100
# Two streams interleaved on one connection.
c.req(1, "echo", "stream", {"chunks": N, "size": SIZE, "interval_ms": 0},
      stream=True)
c.req(2, "echo", "stream", {"chunks": 20, "size": 10, "interval_ms": 5},
      stream=True)
got = {1: [], 2: []}
ends = {}
while len(ends) < 2:
    m = c.recv(20)
    check(m is not None, "connection closed mid-stream")
    check(m["id"] in (1, 2), "reply for unknown id %r" % m.get("id"))
    check(m["id"] not in ends, "message after the end of %d" % m["id"])
    if m["t"] == "chunk":
        got[m["id"]].append(m)
    else:
        ends[m["id"]] = m
for id, n, size in ((1, N, SIZE), (2, 20, 10)):
    check(ends[id]["t"] == "final",
          "request %d ended with %r" % (id, ends[id]))
    check(body(ends[id]) == {"chunks": n},
          "final of %d: got %r" % (id, ends[id]["body"]))
    seqs = [m["seq"] for m in got[id]]
    check(seqs == list(range(n)),
          "request %d: got seqs %s..., want 0..%d" % (id, seqs[:10], n - 1))
    for i, m in enumerate(got[id]):
        want = (b"%d\n" % i).ljust(size, b".")
        check(m["body"] == want,
              "request %d chunk %d: got %r, want %r" % (id, i, m["body"], want))
# Without stream, no chunk may arrive.
c.req(3, "echo", "stream", {"chunks": 3, "size": 8, "interval_ms": 0})
chunks, end = c.until_end(3)
check(not chunks, "got %d chunks for a request without stream" % len(chunks))
print("ok: %d + 20 chunks in order" % N)

# Big bodies, and a reader slower than the stream: 24 MB of chunks pile
# up unread (the broker stops reading this client meanwhile), then all
# of it arrives, followed by the answer to a request sent in between.
big = os.urandom(700000).hex()
c.req(4, "echo", "echo", big)
chunks, end = c.until_end(4)
check(end["t"] == "final" and end["body"] == big.encode(), "big echo")
c.req(5, "echo", "stream", {"chunks": 120, "size": 200000, "interval_ms": 0},
      stream=True)
time.sleep(1.5)
c.req(6, "echo", "echo", {"late": True})
seqs, ends = [], {}
while len(ends) < 2:
    m = c.recv(20)
    check(m is not None, "closed during the big stream")
    if m["t"] == "chunk":
        check(len(m["body"]) == 200000, "chunk of %d bytes" % len(m["body"]))
        seqs.append(m["seq"])
    else:
        ends[m["id"]] = m
check(seqs == list(range(120)), "big stream seqs: %s..." % seqs[:5])
check(body(ends[5]) == {"chunks": 120}, "big stream final %r" % ends[5])
check(body(ends[6]) == {"late": True}, "late echo %r" % ends[6])
print("ok: big bodies and a slow reader")
PY

# The CLI prints the chunks as they arrive, then exits 0.
out=$("$OMNI_BIN/omni" call echo stream '{"chunks":5,"size":4,"interval_ms":10}' \
    --stream) || fail "omni call --stream failed"
want=$'0\n..1\n..2\n..3\n..4\n..'
[[ "$out" == "$want"* ]] || fail "CLI output: got '$out', want it to start '$want'"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: streams complete and in order"
