#!/usr/bin/env bash
# t1070-broker-bad-input: malformed input per PROTOCOL.md section 4.  An
# undecodable message in a good frame gets an error and the connection
# stays; a bad frame length gets one error, then the connection closes;
# meanwhile another client keeps being served.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_MAX_FRAME=4096
omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit $?
from omnitest import *
import random
rnd = random.Random(1070)
good = Conn()
served = [0]

def still_served(tag):
    """The other client gets a correct answer after each attack."""
    served[0] += 1
    id = 1000 + served[0]
    good.req(id, "echo", "echo", {"after": tag})
    chunks, end = good.until_end(id, 5)
    check(end["t"] == "final" and body(end) == {"after": tag},
          "good client after %s: got %r" % (tag, end))

def stays(c, tag):
    """c is still usable: a request on it is answered."""
    c.req(77, "echo", "echo", {"ok": tag})
    chunks, end = c.until_end(77, 5)
    check(end["t"] == "final", "%s: connection unusable: %r" % (tag, end))

def error(c, tag, codes, id=0):
    m = c.recv(5)
    check(m is not None, "%s: closed without an error" % tag)
    check(m["t"] == "error", "%s: got %r, want an error" % (tag, m))
    check(m["code"] in codes, "%s: code %r, want %s" % (tag, m["code"], codes))
    check(m["id"] == id, "%s: error id %r, want %r" % (tag, m["id"], id))
    return m

def closes(c, tag):
    m = c.recv(5)
    check(m is None, "%s: connection stays open after %r" % (tag, m))

def packb(o):
    return msgpack.packb(o, use_bin_type=True)

# In-frame errors: the connection stays.
cases = [
    ("truncated msgpack", b"\x83\xa1t\xa3req\xa2id", ("PROTOCOL",), 0),
    ("not a map", packb([1, 2, 3]), ("PROTOCOL",), 0),
    ("svc not a string",
     packb({"t": "req", "v": 1, "id": 5, "svc": 123, "op": "echo"}),
     ("BAD_REQUEST",), 5),
    ("id not an integer",
     packb({"t": "req", "v": 1, "id": "x", "svc": "echo", "op": "echo"}),
     ("BAD_REQUEST",), 0),
    ("missing svc", packb({"t": "req", "v": 1, "id": 6, "op": "echo"}),
     ("BAD_REQUEST",), 6),
    ("unknown type", packb({"t": "hello", "v": 1, "id": 7}),
     ("BAD_REQUEST",), 7),
    ("final from a client",
     packb({"t": "final", "v": 1, "id": 8, "body": b""}), ("BAD_REQUEST",), 8),
    ("wrong version",
     packb({"t": "req", "v": 9, "id": 9, "svc": "echo", "op": "echo"}),
     ("BAD_REQUEST",), 9),
    ("svc too long",
     packb({"t": "req", "v": 1, "id": 10, "svc": "e" * 65, "op": "echo"}),
     ("BAD_REQUEST",), 10),
    ("deep nesting",
     b"\x82\xa1t\xa3req\xa4body" + b"\x91" * 40 + b"\x01",
     ("TOO_LARGE", "PROTOCOL"), 0),
    ("huge array claim", b"\xdd\x7f\xff\xff\xff", ("TOO_LARGE",), 0),
    ("random bytes", bytes([0xc1]) + rnd.randbytes(200), ("PROTOCOL",), 0),
]
c = Conn()
for tag, payload, codes, id in cases:
    c.frame(payload)
    m = error(c, tag, codes, id)
    check(len(m["message"]) > 0, "%s: empty message" % tag)
    stays(c, tag)
    still_served(tag)

# A duplicate id in flight is BAD_REQUEST; the first request completes.
c.req(50, "echo", "sleep", {"ms": 300})
c.req(50, "echo", "echo", {})
m = error(c, "duplicate id", ("BAD_REQUEST",), 50)
check("50" in m["message"], "duplicate id message %r" % m["message"])
chunks, end = c.until_end(50)
check(end["t"] == "final" and body(end) == {"slept_ms": 300},
      "first request 50: got %r" % end)
c.close()

# Framing errors: one error with id 0, then the connection closes.
for tag, data, code in (
        ("length over the limit", b"\x00\x10\x00\x00" + b"\x80" * 16,
         "TOO_LARGE"),
        ("length 0", b"\x00\x00\x00\x00" + packb({"t": "req"}), "PROTOCOL"),
        ("random unframed bytes", b"\x7f" + rnd.randbytes(300), "TOO_LARGE")):
    c = Conn()
    c.raw(data)
    error(c, tag, (code,), 0)
    closes(c, tag)
    still_served(tag)

# A truncated frame, then the client goes away: nothing to answer, and
# the broker carries on.
c = Conn()
c.raw(b"\x00\x00\x01\x00" + b"\x85\xa1t")
time.sleep(0.1)
c.close()
still_served("truncated frame")

# Many pipelined good frames split at every byte boundary still parse.
c = Conn()
data = b""
for i in range(20):
    p = packb({"t": "req", "v": 1, "id": 200 + i, "svc": "echo",
               "op": "echo", "body": b'{"i":%d}' % i})
    data += struct.pack(">I", len(p)) + p
for i in range(0, len(data), 7):
    c.raw(data[i:i + 7])
    time.sleep(0.001)
seen = set()
while len(seen) < 20:
    m = c.recv(5)
    check(m["t"] == "final", "pipelined: got %r" % m)
    check(body(m) == {"i": m["id"] - 200}, "pipelined: body %r" % m["body"])
    seen.add(m["id"])
print("ok: %d in-frame cases, 3 framing cases" % len(cases))
PY

kill -0 "$OMNI_BROKER_PID" || fail "broker died"
grep -q 'protocol error' "$OMNI_BROKER_LOG" || fail "no protocol error logged"
grep -q "protocol error: frame of 1048576 bytes over the limit of 4096" \
    "$OMNI_BROKER_LOG" || fail "framing error not logged"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: bad input answered, other clients served"
