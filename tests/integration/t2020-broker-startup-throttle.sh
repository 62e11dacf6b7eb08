#!/usr/bin/env bash
# t2020-broker-startup-throttle: a worker that crashes at start-up is
# restarted with backoff and, after 3 failures in a row, throttled (the
# Postfix warning); a missing worker binary is an error and leaves its
# service not ready; the broker stays up, ping says why, and it drains.
. "$(dirname "$0")/lib.sh"
omni_setup
fake=$OMNI_TEST_DIR/fakebin
mkdir -p "$fake"
printf '#!/bin/sh\necho "fake omni-echo failing" >&2\nexit 1\n' \
    >"$fake/omni-echo"
chmod +x "$fake/omni-echo"
export OMNI_WORKER_DIR=$fake OMNI_SERVICES=echo,ghost
export OMNI_RESTART_MIN_MS=50 OMNI_RESTART_MAX_MS=3000 OMNI_LOG_FORMAT=json
omni_start_broker
sleep 1.5
kill -0 "$OMNI_BROKER_PID" || fail "broker died"
grep -q 'omni-echo: bad command startup -- throttling' "$OMNI_BROKER_LOG" ||
    fail "no throttling warning"
n=$(grep -c 'started omni-echo' "$OMNI_BROKER_LOG")
[ "$n" -eq 3 ] || fail "omni-echo started $n times in 1.5 s, want 3"
grep -q "cannot run '$fake/omni-ghost'" "$OMNI_BROKER_LOG" ||
    fail "missing binary not logged"

err=$("$OMNI_BIN/omni" ping 2>&1) && fail "ping succeeded with no worker"
grep -q UNAVAILABLE <<<"$err" || fail "ping: got '$err', want UNAVAILABLE"
grep -q "'echo'" <<<"$err" || fail "ping does not name echo: '$err'"
grep -q "omni-ghost" <<<"$err" || fail "ping does not say why ghost: '$err'"
# A request waits in the queue and times out.
err=$("$OMNI_BIN/omni" call echo echo '{}' --timeout 200 2>&1) &&
    fail "echo succeeded with no worker"
grep -q TIMEOUT <<<"$err" || fail "got '$err', want TIMEOUT"
# Throttled: the next start comes restart_max_ms after the third failure
# (timestamps from the log, so a slow machine cannot fool the check).
for ((i = 0; i < 60; i++)); do
    [ "$(grep -c 'started omni-echo' "$OMNI_BROKER_LOG")" -ge 4 ] && break
    sleep 0.1
done
/usr/bin/python3 - "$OMNI_BROKER_LOG" <<'PY' || fail "throttle timing"
import json, sys
starts, throttled = [], []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e["msg"].startswith("started omni-echo"):
        starts.append(e["ts"])
    if e["msg"] == "omni-echo: bad command startup -- throttling":
        throttled.append(e["ts"])
assert len(starts) >= 4, "got %d starts, want 4" % len(starts)
assert throttled, "no throttling warning"
gap = starts[3] - throttled[0]
assert starts[2] <= throttled[0], "throttled before the third failure"
assert 2.9 <= gap <= 4.5, "4th start %.3f s after the throttle, want 3" % gap
print("ok: 4th start %.3f s after the throttle" % gap)
PY
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: start-up failures throttled, broker stays up"
