#!/usr/bin/env bash
# t2000-broker-worker-killed: kill -9 of a busy worker answers its
# requests WORKER_LOST at once (well inside the heartbeat window), and a
# replacement starts and serves.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_HEARTBEAT_MS=1000 OMNI_LIVENESS=3 OMNI_RESTART_MIN_MS=100
omni_start_broker
omni_wait_ready || fail "broker not ready"
pid=$(grep -o "ready: pid [0-9]*" "$OMNI_BROKER_LOG" | tail -n 1 | cut -d' ' -f3)
[ -n "$pid" ] || fail "no worker pid in the log"

omni_py - "$pid" <<'PY' || exit $?
from omnitest import *
import signal
pid = int(sys.argv[1])
c = Conn()
for i in (1, 2, 3):
    c.req(i, "echo", "sleep", {"ms": 10000})
c.req(4, "echo", "stream", {"chunks": 1000, "size": 8, "interval_ms": 20},
      stream=True, idempotent=True)
m = c.recv(5)
check(m["t"] == "chunk" and m["id"] == 4, "got %r" % m)
time.sleep(0.2)
t0 = time.time()
os.kill(pid, signal.SIGKILL)
lost = {}
while len(lost) < 4:
    m = c.recv(5)
    check(m is not None, "connection closed")
    if m["t"] == "chunk":
        continue
    check(m["t"] == "error" and m["code"] == "WORKER_LOST",
          "request %d: got %r" % (m["id"], m))
    check(m["status"] == 502, "status %r" % m["status"])
    lost[m["id"]] = time.time() - t0
check(sorted(lost) == [1, 2, 3, 4], "lost: %s" % sorted(lost))
# Streamed already, so even the idempotent one is not re-dispatched.
# Well inside the 3 s liveness window: the reaper, not the heartbeats.
check(max(lost.values()) < 2.0,
      "WORKER_LOST after %.3f s, want it at once" % max(lost.values()))
print("ok: WORKER_LOST after %.3f s" % max(lost.values()))
PY

for ((i = 0; i < 50; i++)); do
    n=$(grep -c "ready: pid" "$OMNI_BROKER_LOG")
    [ "$n" -ge 2 ] && break
    sleep 0.1
done
[ "$n" -ge 2 ] || fail "no replacement worker became ready"
new=$(grep -o "ready: pid [0-9]*" "$OMNI_BROKER_LOG" | tail -n 1 | cut -d' ' -f3)
[ "$new" != "$pid" ] || fail "replacement has the old pid $pid"
omni_wait_ready 10 || fail "not ready after the restart"
out=$("$OMNI_BIN/omni" call echo echo '{"back":true}') || fail "echo failed"
[ "$out" = '{"back":true}' ] || fail "got '$out'"
[ "$(omni_stat services echo restarts)" = 1 ] ||
    fail "restarts: got $(omni_stat services echo restarts), want 1"
[ "$(omni_stat services echo worker_lost)" = 4 ] ||
    fail "worker_lost: got $(omni_stat services echo worker_lost), want 4"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: killed worker's requests failed at once, replacement serves"
