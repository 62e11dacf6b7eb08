#!/usr/bin/env bash
# t2030-broker-silent-worker: a worker that stops answering (SIGSTOP)
# is declared dead after liveness * heartbeat_ms: its requests get
# WORKER_LOST, it is killed, and a replacement starts.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_HEARTBEAT_MS=200 OMNI_LIVENESS=3 OMNI_RESTART_MIN_MS=50
omni_start_broker
omni_wait_ready || fail "broker not ready"
pid=$(grep -o "ready: pid [0-9]*" "$OMNI_BROKER_LOG" | tail -n 1 | cut -d' ' -f3)
[ -n "$pid" ] || fail "no worker pid in the log"
omni_track "$pid"

omni_py - "$pid" <<'PY' || exit $?
from omnitest import *
import signal
pid = int(sys.argv[1])
c = Conn()
c.req(1, "echo", "sleep", {"ms": 8000})
time.sleep(0.3)
t0 = time.time()
os.kill(pid, signal.SIGSTOP)
m = c.recv(6)
dt = time.time() - t0
check(m["t"] == "error" and m["code"] == "WORKER_LOST", "got %r" % m)
# Silent for 3 heartbeats of 200 ms, checked every 200 ms; its last
# heartbeat may predate the SIGSTOP by up to one interval.
check(0.35 <= dt <= 3.0, "WORKER_LOST after %.3f s, want about 0.4-0.8" % dt)
print("ok: WORKER_LOST after %.3f s" % dt)
PY

grep -q "lost: silent for 600 ms" "$OMNI_BROKER_LOG" ||
    fail "the log does not say the worker went silent"
for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the silent worker $pid was not killed"
omni_wait_ready 10 || fail "no replacement worker"
out=$("$OMNI_BIN/omni" call echo echo '{"n":2}') || fail "echo failed"
[ "$out" = '{"n":2}' ] || fail "got '$out'"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: silent worker declared dead and replaced"
