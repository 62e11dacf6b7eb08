#!/usr/bin/env bash
# t1040-broker-timeout: a request whose deadline passes gets TIMEOUT at
# the deadline and the worker is told to cancel it; a queued request
# times out too, and the default deadline applies when none is given.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_CAPACITY_ECHO=1 OMNI_DEFAULT_TIMEOUT_MS=700
omni_start_broker
omni_wait_ready || fail "broker not ready"

t0=$(date +%s%N)
err=$("$OMNI_BIN/omni" call echo sleep '{"ms":5000}' --timeout 300 2>&1 \
    >/dev/null) && fail "a sleep past its deadline exited 0"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q TIMEOUT <<<"$err" || fail "got '$err', want TIMEOUT"
[ $ms -lt 4000 ] || fail "TIMEOUT after $ms ms, want about 300"

omni_py - <<'PY' || exit $?
from omnitest import *
c = Conn()
t0 = time.time()
c.req(1, "echo", "sleep", {"ms": 3000}, deadline_ms=400)  # dispatched
c.req(2, "echo", "sleep", {"ms": 10}, deadline_ms=200)    # queued behind 1
c.req(3, "echo", "sleep", {"ms": 3000})                   # default 700 ms
ends = {}
while len(ends) < 3:
    m = c.recv(10)
    check(m is not None, "connection closed")
    ends[m["id"]] = (m, time.time() - t0)
# Lower bounds are the deadlines; upper ones only below the sleeps.
for id, lo, hi in ((1, 0.39, 2.5), (2, 0.19, 2.5), (3, 0.69, 2.5)):
    m, dt = ends[id]
    check(m["t"] == "error" and m["code"] == "TIMEOUT",
          "request %d: got %r" % (id, m))
    check(m["status"] == 504, "status %r" % m["status"])
    check(lo <= dt <= hi, "request %d timed out after %.3f s" % (id, dt))
# The slot freed by the cancel serves the next request.
c.req(4, "echo", "echo", {"after": "timeouts"})
chunks, end = c.until_end(4)
check(end["t"] == "final", "after the timeouts: got %r" % end)
print("ok")
PY

sleep 0.2
n=$(grep -c 'echo: request [0-9]* cancelled' "$OMNI_BROKER_LOG")
[ "$n" -ge 3 ] || fail "worker saw $n cancels, want at least 3"
[ "$(omni_stat services echo timeouts)" -ge 4 ] ||
    fail "stats timeouts: got $(omni_stat services echo timeouts), want >= 4"
[ "$(omni_stat in_flight)" = 0 ] || fail "requests left in flight"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: deadlines answered TIMEOUT and cancelled at the worker"
