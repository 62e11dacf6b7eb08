#!/usr/bin/env bash
# t1060-broker-client-gone: a client that disconnects mid-stream has its
# request cancelled at the worker (the echo worker logs the cancel), its
# queued request dropped, and nothing is left in flight.  A "cancel"
# message does the same for one request and answers it CANCELLED.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_CAPACITY_ECHO=1
omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit $?
from omnitest import *
c = Conn()
c.req(1, "echo", "stream", {"chunks": 1000, "size": 16, "interval_ms": 10},
      stream=True)
c.req(2, "echo", "sleep", {"ms": 100})  # queued: capacity is 1
for i in range(3):
    m = c.recv(5)
    check(m["t"] == "chunk" and m["id"] == 1, "got %r" % m)
c.close()
print("ok: closed after 3 chunks")
PY

for ((i = 0; i < 50; i++)); do
    grep -q 'echo: request [0-9]* cancelled' "$OMNI_BROKER_LOG" && break
    sleep 0.1
done
grep -q 'echo: request [0-9]* cancelled' "$OMNI_BROKER_LOG" ||
    fail "the echo worker did not log the cancel"
[ "$(omni_stat in_flight)" = 0 ] ||
    fail "in_flight: got $(omni_stat in_flight), want 0"
[ "$(omni_stat services echo queued)" = 0 ] || fail "queued request kept"
omni_py - <<'PY' || exit $?
from omnitest import *
c = Conn()
c.req(1, "echo", "stream", {"chunks": 1000, "size": 16, "interval_ms": 10},
      stream=True)
m = c.recv(5)
check(m["t"] == "chunk", "got %r" % m)
c.send(t="cancel", id=1)
chunks, end = c.until_end(1)
check(end["t"] == "error" and end["code"] == "CANCELLED",
      "cancel: got %r" % end)
check(end["status"] == 499, "status %r" % end["status"])
# Cancelling what has ended already is silently ignored.
c.send(t="cancel", id=1)
c.req(2, "echo", "echo", {"after": "cancel"})
end = c.recv(5)
check(end["id"] == 2 and end["t"] == "final",
      "after cancel: got %r, want only the final of 2" % end)
print("ok: cancelled")
PY
sleep 0.2
n=$(grep -c 'echo: request [0-9]* cancelled' "$OMNI_BROKER_LOG")
[ "$n" -ge 2 ] || fail "the worker logged $n cancels, want 2"

# The worker's slot is free again.
out=$("$OMNI_BIN/omni" call echo echo '{"x":1}' --timeout 2000) ||
    fail "echo after the disconnect failed"
[ "$out" = '{"x":1}' ] || fail "got '$out'"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: disconnect cancelled the stream at the worker"
