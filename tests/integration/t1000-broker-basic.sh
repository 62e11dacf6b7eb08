#!/usr/bin/env bash
# t1000-broker-basic: start, ping, echo round trip, stats, and a SIGTERM
# drain that lets an in-flight request finish and exits 0.
. "$(dirname "$0")/lib.sh"
omni_setup
omni_start_broker
omni_wait_ready || fail "broker not ready"

out=$("$OMNI_BIN/omni" call echo echo '{"hi":[1,2,3]}') || fail "echo failed"
[ "$out" = '{"hi":[1,2,3]}' ] || fail "echo: got '$out', want '{\"hi\":[1,2,3]}'"
[ "$(omni_stat services echo ready)" = 1 ] || fail "stats: echo not ready"
[ "$(omni_stat services echo requests)" = 1 ] ||
    fail "stats: got $(omni_stat services echo requests) echo requests, want 1"
[ -S "$OMNI_SOCKET" ] || fail "no socket at $OMNI_SOCKET"
mode=$(stat -c %a "$OMNI_TEST_DIR")
[ $((8#$mode & 8#027)) -eq 0 ] || fail "runtime dir mode $mode is too open"

# A sleep in flight when SIGTERM arrives still completes, and the broker
# does not exit before it has.
t_launch=$(date +%s%N)
"$OMNI_BIN/omni" call echo sleep '{"ms":3000}' >"$OMNI_TEST_DIR/sleep.out" \
    2>&1 &
cpid=$!
for ((i = 0; i < 50; i++)); do
    [ "$(omni_stat in_flight)" = 1 ] && break
    sleep 0.1
done
[ "$(omni_stat in_flight)" = 1 ] || fail "the sleep request is not in flight"
kill -TERM "$OMNI_BROKER_PID"
sleep 0.3
# Draining: new connections are refused, the broker is still up.
kill -0 "$OMNI_BROKER_PID" || fail "broker exited before the drain ended"
"$OMNI_BIN/omni" ping >/dev/null 2>&1 && fail "ping answered while draining"
wait "$OMNI_BROKER_PID"
rc=$?
OMNI_BROKER_PID=
ms=$((($(date +%s%N) - t_launch) / 1000000))
[ $rc -eq 0 ] || fail "broker exited with status $rc, want 0"
wait $cpid || fail "in-flight sleep failed: $(cat "$OMNI_TEST_DIR/sleep.out")"
grep -q '"slept_ms":3000' "$OMNI_TEST_DIR/sleep.out" ||
    fail "sleep reply: got '$(cat "$OMNI_TEST_DIR/sleep.out")'"
[ $ms -ge 3000 ] || fail "broker exited $ms ms after the sleep began, before it ended"
[ ! -e "$OMNI_SOCKET" ] || fail "socket left behind after exit"
grep -q 'draining' "$OMNI_BROKER_LOG" || fail "no drain in the log"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: round trip, drain with a request in flight, exit 0"
