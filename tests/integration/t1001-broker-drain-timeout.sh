#!/usr/bin/env bash
# t1001-broker-drain-timeout: requests still running when broker.drain_ms
# runs out are answered UNAVAILABLE (none is lost), a request sent during
# the drain is refused UNAVAILABLE, and the broker still exits 0 with its
# socket removed and its workers gone.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_DRAIN_MS=500
omni_start_broker
omni_wait_ready || fail "broker not ready"
wpid=$(grep -o "ready: pid [0-9]*" "$OMNI_BROKER_LOG" | tail -n 1 | cut -d' ' -f3)

omni_py - "$OMNI_BROKER_PID" <<'PY' || exit $?
from omnitest import *
import signal
c = Conn()
c.req(1, "echo", "sleep", {"ms": 10000})
c.req(2, "echo", "stream", {"chunks": 10000, "size": 8, "interval_ms": 5},
      stream=True)
c.recv(5)
time.sleep(0.1)
t0 = time.time()
os.kill(int(sys.argv[1]), signal.SIGTERM)
time.sleep(0.1)
c.req(3, "echo", "echo", {})
ends = {}
while len(ends) < 3:
    m = c.recv(5)
    check(m is not None, "closed before every request ended: %s" % ends)
    if m["t"] != "chunk":
        check(m["id"] not in ends, "two ends for %d" % m["id"])
        ends[m["id"]] = (m, time.time() - t0)
m, dt = ends[3]
check(m["t"] == "error" and m["code"] == "UNAVAILABLE", "new request: %r" % m)
check("draining" in m["message"], "message %r" % m["message"])
check(dt < 1.0, "refusal after %.3f s" % dt)
for id in (1, 2):
    m, dt = ends[id]
    check(m["t"] == "error" and m["code"] == "UNAVAILABLE",
          "request %d: got %r" % (id, m))
    check(0.4 <= dt <= 5.0, "request %d ended after %.3f s" % (id, dt))
check(c.recv(5) is None, "connection not closed at exit")
print("ok")
PY

t0=$(date +%s%N)
wait "$OMNI_BROKER_PID"
rc=$?
OMNI_BROKER_PID=
[ $rc -eq 0 ] || fail "broker exited with status $rc, want 0"
[ ! -e "$OMNI_SOCKET" ] || fail "socket left behind"
[ ! -e "$OMNI_TEST_DIR/workers.ipc" ] || fail "workers.ipc left behind"
kill -0 "$wpid" 2>/dev/null && fail "worker $wpid still running"
omni_check_log
echo "ok: drain timeout answered UNAVAILABLE, exit 0"
