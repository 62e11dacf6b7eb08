#!/usr/bin/env bash
# t2010-broker-redispatch: when a worker dies, an idempotent request that
# has sent nothing yet is re-dispatched (to the replacement here) and
# completes; a non-idempotent one in flight gets WORKER_LOST.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_RESTART_MIN_MS=50
omni_start_broker
omni_wait_ready || fail "broker not ready"
pid=$(grep -o "ready: pid [0-9]*" "$OMNI_BROKER_LOG" | tail -n 1 | cut -d' ' -f3)
[ -n "$pid" ] || fail "no worker pid in the log"

omni_py - "$pid" <<'PY' || exit $?
from omnitest import *
import signal
pid = int(sys.argv[1])
c = Conn()
c.req(1, "echo", "sleep", {"ms": 600}, idempotent=True)
c.req(2, "echo", "sleep", {"ms": 600})
c.req(3, "echo", "echo", {"again": 1}, idempotent=True, deadline_ms=8000)
chunks, end = c.until_end(3)
check(end["t"] == "final", "warm-up: got %r" % end)
time.sleep(0.2)
os.kill(pid, signal.SIGKILL)
ends = {}
while len(ends) < 2:
    m = c.recv(10)
    check(m is not None, "connection closed")
    ends[m["id"]] = m
check(ends[2]["t"] == "error" and ends[2]["code"] == "WORKER_LOST",
      "non-idempotent: got %r" % ends[2])
check(ends[1]["t"] == "final" and body(ends[1]) == {"slept_ms": 600},
      "idempotent: got %r" % ends[1])
print("ok")
PY

grep -q "1 requests failed, 1 re-dispatched" "$OMNI_BROKER_LOG" ||
    fail "the log does not show 1 failed and 1 re-dispatched"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: idempotent request re-dispatched after its worker died"
