#!/usr/bin/env bash
# t1010-broker-concurrency: 1,000 requests at once over 50 connections;
# every reply arrives once and matches its request (ids are per
# connection, bodies unique).  Raw clients first, then omni-bench.
. "$(dirname "$0")/lib.sh"
omni_setup
omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit $?
from omnitest import *
import selectors
CONNS, PER = 50, 20
conns = [Conn() for _ in range(CONNS)]
t0 = time.time()
for ci, c in enumerate(conns):
    out = b""
    for i in range(PER):
        p = msgpack.packb({"t": "req", "v": 1, "id": i + 1, "svc": "echo",
                           "op": "echo", "body": b'{"c":%d,"i":%d}' % (ci, i + 1)},
                          use_bin_type=True)
        out += struct.pack(">I", len(p)) + p
    c.raw(out)  # all 20 pipelined in one write
sel = selectors.DefaultSelector()
for ci, c in enumerate(conns):
    c.s.setblocking(False)
    sel.register(c.s, selectors.EVENT_READ, ci)
got = [set() for _ in range(CONNS)]
total = 0
deadline = time.time() + 30
while total < CONNS * PER and time.time() < deadline:
    for key, _ in sel.select(1):
        ci = key.data
        c = conns[ci]
        d = c.s.recv(65536)
        check(d, "connection %d closed" % ci)
        c.buf += d
        while len(c.buf) >= 4:
            n = struct.unpack(">I", c.buf[:4])[0]
            if len(c.buf) < 4 + n:
                break
            m = msgpack.unpackb(c.buf[4:4 + n], raw=False)
            c.buf = c.buf[4 + n:]
            check(m["t"] == "final", "conn %d: got %r" % (ci, m))
            check(m["id"] not in got[ci], "conn %d: id %d twice" % (ci, m["id"]))
            check(body(m) == {"c": ci, "i": m["id"]},
                  "conn %d id %d: mismatched body %r" % (ci, m["id"], m["body"]))
            got[ci].add(m["id"])
            total += 1
check(total == CONNS * PER, "got %d replies, want %d" % (total, CONNS * PER))
print("ok: %d replies matched in %.2f s" % (total, time.time() - t0))
PY

[ "$(omni_stat services echo requests)" = 1000 ] ||
    fail "stats requests: got $(omni_stat services echo requests), want 1000"
[ "$(omni_stat in_flight)" = 0 ] || fail "requests left in flight"

bench=$OMNI_BIN/omni-bench
if [ -x "$bench" ]; then
    out=$("$bench" -s "$OMNI_SOCKET" -c 50 -n 1000 -p 20 --svc echo \
        --op echo --body '{"bench":true}') || fail "omni-bench failed: $out"
    echo "$out"
    /usr/bin/python3 - "$out" <<'PY' || fail "omni-bench result: $out"
import json, sys
r = json.loads(sys.argv[1].strip().splitlines()[-1])
assert r["sent"] == 1000, r
assert r["ok"] == 1000, r
assert r["mismatched"] == 0, r
assert not r["errors"], r
PY
fi
omni_stop || fail "broker exited with status $?"
omni_check_log
[ -x "$bench" ] || skip "raw clients passed; $bench is not built"
echo "ok: 1,000 concurrent requests over 50 connections, all matched"
