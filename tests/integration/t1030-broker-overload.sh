#!/usr/bin/env bash
# t1030-broker-overload: with one worker of capacity 2 and a queue of 2,
# a burst of 10 sleeps gets 2 dispatched, 2 queued and 6 OVERLOADED at
# once (with a retry hint); the admitted 4 all complete.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_WORKERS_ECHO=1 OMNI_CAPACITY_ECHO=2 OMNI_QUEUE_MAX=2
omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit $?
from omnitest import *
c = Conn()
t0 = time.time()
for i in range(1, 11):
    c.req(i, "echo", "sleep", {"ms": 800})
over, finals = {}, {}
while len(over) + len(finals) < 10:
    m = c.recv(10)
    check(m is not None, "connection closed")
    if m["t"] == "error":
        check(m["code"] == "OVERLOADED", "request %d: got %r" % (m["id"], m))
        check(m["status"] == 503, "status %r, want 503" % m["status"])
        check(m.get("retry_after_ms", 0) > 0, "no retry_after_ms in %r" % m)
        check("echo" in m["message"], "message %r" % m["message"])
        over[m["id"]] = time.time() - t0
    else:
        check(m["t"] == "final", "got %r" % m)
        finals[m["id"]] = time.time() - t0
check(sorted(over) == list(range(5, 11)),
      "OVERLOADED ids: got %s, want 5..10" % sorted(over))
check(sorted(finals) == [1, 2, 3, 4], "finals: got %s" % sorted(finals))
check(max(over.values()) < 0.5,
      "OVERLOADED came after %.3f s, want at once" % max(over.values()))
# Two run at once, then the two queued ones (which cannot end before
# two sleeps of 800 ms).
check(max(finals[1], finals[2]) + 0.4 < min(finals[3], finals[4]),
      "queued ones not after the first two: %r" % finals)
check(min(finals[3], finals[4]) >= 1.55, "queued ones too early: %r" % finals)
print("ok: 6 OVERLOADED in %.3f s" % max(over.values()))
PY

[ "$(omni_stat services echo overloaded)" = 6 ] ||
    fail "stats overloaded: got $(omni_stat services echo overloaded), want 6"
grep -q "queue full" "$OMNI_BROKER_LOG" || fail "no overload warning logged"
n=$(grep -c "queue full" "$OMNI_BROKER_LOG")
[ "$n" -eq 1 ] || fail "overload warning logged $n times, want 1 (rate limit)"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: bounded queue answers OVERLOADED at once"
