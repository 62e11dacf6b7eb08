#!/usr/bin/env bash
# t5050-mcp-ops-errors: the mcp worker's broker operations refuse what
# they cannot serve, each with its code and a message naming the fault
# (bodies that are not JSON objects, bad names and sessions, listen
# without a stream, unknown sessions and operations), and clients that
# cancel: a cancelled mcp/call and a cancelled rpc tools/call reach the
# upstream server as notifications/cancelled; a cancelled listen stream
# frees its slot.  Python fake server only (no node needed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
export OMNI_SERVICES=mcp
omni_setup
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "fake": {"command": "/usr/bin/python3", "args": ["$MCP_FAKE"]}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 20 fake__echo fake__sleep fake__cancelled ||
    fail "tools are not listed"

omni_py - <<'PY' || exit 1
import json, time
from omnitest import Conn, body, check

c = Conn()
n = [0]

def ask(op, b, **kw):
    n[0] += 1
    c.req(n[0], "mcp", op, b, **kw)
    return c.until_end(n[0])

# Refusals: (op, body, stream, code, words).
cases = [
    ("call", b"{not json", False, "BAD_REQUEST", "body is not JSON"),
    ("call", b"[1,2]", False, "BAD_REQUEST", "body must be a JSON object"),
    ("call", {"name": 5}, False, "BAD_REQUEST", "'name' must be a string"),
    ("call", {"name": "nope__x"}, False, "NOT_FOUND", "nope__x"),
    ("frobnicate", {}, False, "UNSUPPORTED", "no operation 'frobnicate'"),
    ("rpc", {"session": 7, "message": {}}, False, "BAD_REQUEST",
     "'session' must be a string or null"),
    ("rpc", {"session": None}, False, "BAD_REQUEST", "'message' is missing"),
    ("listen", {"session": "x"}, False, "BAD_REQUEST",
     "listen needs a streamed request"),
    ("listen", {"session": None}, True, "BAD_REQUEST",
     "'session' must be a string"),
    ("listen", {"session": "no-such-session"}, True, "NOT_FOUND",
     "no-such-session"),
]
for op, b, stream, code, words in cases:
    _, m = ask(op, b, stream=stream)
    check(m["t"] == "error" and m.get("code") == code and
          words in m.get("message", ""),
          "%s %r: got %r, want %s '%s'" % (op, b, m, code, words))

# arguments null is no arguments.
_, m = ask("call", {"name": "fake__echo", "arguments": None})
check(m["t"] == "final" and body(m)["content"][0]["text"] == "",
      "null arguments: got %r" % m)

# A cancelled mcp/call: the server hears about it.
n[0] += 1
sleep_id = n[0]
c.req(sleep_id, "mcp", "call", {"name": "fake__sleep",
                                "arguments": {"ms": 5000}})
time.sleep(0.3)
c.send(t="cancel", id=sleep_id)

# An rpc session, a listen stream on it, an rpc tools/call cancelled.
_, m = ask("rpc", {"session": None, "message": {
    "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t5050", "version": "1"}}}})
check(m["t"] == "final", "initialize: got %r" % m)
sid = body(m)["session"]
check(isinstance(sid, str) and len(sid) == 32, "session: %r" % body(m))
n[0] += 1
listen_id = n[0]
c.req(listen_id, "mcp", "listen", {"session": sid}, stream=True)
n[0] += 1
rpc_id = n[0]
c.req(rpc_id, "mcp", "rpc", {"session": sid, "message": {
    "jsonrpc": "2.0", "id": 2, "method": "tools/call",
    "params": {"name": "fake__sleep", "arguments": {"ms": 5000}}}})
time.sleep(0.3)
c.send(t="cancel", id=rpc_id)
c.send(t="cancel", id=listen_id)
time.sleep(0.3)

# Both sleeps were cancelled upstream (two ids), well before 5 s.
t = time.monotonic()
_, m = ask("call", {"name": "fake__cancelled"})
check(m["t"] == "final", "cancelled: got %r" % m)
ids = json.loads(body(m)["content"][0]["text"])
check(len(ids) == 2, "cancelled upstream: got %r" % ids)
check(time.monotonic() - t < 2, "cancelled took %.1f s" % (time.monotonic() - t))

# The session still works, and ending it is final.
_, m = ask("rpc", {"session": sid, "message": {
    "jsonrpc": "2.0", "id": 3, "method": "ping"}})
check(m["t"] == "final" and body(m)["status"] == 200, "ping: got %r" % m)
_, m = ask("rpc", {"session": sid, "delete": True})
check(m["t"] == "final" and body(m)["status"] == 200, "delete: got %r" % m)
_, m = ask("rpc", {"session": sid, "delete": True})
check(body(m)["status"] == 404, "second delete: got %r" % m)
PY
omni_stop || fail "broker exit status $?"
omni_check_log
echo ok
