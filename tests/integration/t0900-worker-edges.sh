#!/usr/bin/env bash
# t0900-worker-edges: the worker runtime's edges, through omni-echo run
# by hand: command-line and configuration errors (exit 2 and 1), a bad
# OMNI_PARENT_FD (ignored with a warning), SIGTERM then a second SIGTERM
# while a request is in flight (drain, then stop now: the request fails
# UNAVAILABLE), a sub-request cancelled with its parent, and
# sub-requests when the broker socket cannot be reached.
. "$(dirname "$0")/lib.sh"
# The broker runs no echo worker of its own: the ones here serve echo.
export OMNI_WORKERS_ECHO=0
omni_setup
ECHO=$OMNI_BIN/omni-echo
OMNI=$OMNI_BIN/omni

# ---- options and configuration, no broker needed

"$ECHO" -h 2>"$OMNI_TEST_DIR/err" || fail "omni-echo -h: exit $?"
grep -q '^usage: .*omni-echo \[-c FILE\] \[-o key=value\]' \
    "$OMNI_TEST_DIR/err" || fail "omni-echo -h: no usage"
for args in "-x" "extra"; do
    # shellcheck disable=SC2086
    "$ECHO" $args 2>"$OMNI_TEST_DIR/err"
    rc=$?
    [ $rc = 2 ] || fail "omni-echo $args: exit $rc, want 2"
    grep -q '^usage: ' "$OMNI_TEST_DIR/err" || fail "omni-echo $args: no usage"
done
check_exit1() { # regex, args...
    local want=$1
    shift
    OMNI_LOG_FORMAT=text "$ECHO" "$@" 2>"$OMNI_TEST_DIR/err"
    local rc=$?
    [ $rc = 1 ] || fail "omni-echo $*: exit $rc, want 1"
    grep -qE "$want" "$OMNI_TEST_DIR/err" ||
        fail "omni-echo $*: stderr '$(cat "$OMNI_TEST_DIR/err")' lacks /$want/"
}
check_exit1 "cannot load the configuration: cannot open '$OMNI_TEST_DIR/no.conf'" \
    -c "$OMNI_TEST_DIR/no.conf"
check_exit1 "bad option -o 'bogus=1': unknown key 'bogus'" -o bogus=1
check_exit1 "bad option -o 'capacity.echo=0': .*\[1, 1000000\]" \
    -o capacity.echo=0
check_exit1 "cannot connect to 'nonsense'" -e nonsense

# ---- a hand-run worker serving the broker

omni_start_broker
for ((i = 0; i < 100; i++)); do
    [ -S "$OMNI_SOCKET" ] && break
    sleep 0.1
done
"$OMNI" ping >/dev/null 2>&1 && fail "ping ready with no echo worker"

# start_echo LOG [ENV=VALUE...]: omni-echo in the background; $epid.
start_echo() {
    local log=$1
    shift
    # Same heartbeat as the broker's (MDP: both sides must agree).
    env OMNI_PARENT_FD=not-a-fd OMNI_LOG_FORMAT=text "$@" "$ECHO" \
        >"$log" 2>&1 &
    epid=$!
    omni_track $epid
}
start_echo "$OMNI_TEST_DIR/echo1.log"
omni_wait_ready 20 || fail "the hand-run worker did not become ready"
grep -q "ignored bad OMNI_PARENT_FD 'not-a-fd'" "$OMNI_TEST_DIR/echo1.log" ||
    fail "bad OMNI_PARENT_FD not reported: $(cat "$OMNI_TEST_DIR/echo1.log")"

# A sub-request is cancelled with its parent.  Once both are running at
# the worker (in flight 2), the parent's client goes away: the broker
# cancels the parent, the worker cancels the sub-request with it, and
# both sleeps end long before their 5 s.
"$OMNI" call echo sub '{"svc":"echo","op":"sleep","body":{"ms":5000}}' \
    --timeout 20000 >/dev/null 2>&1 &
cpid=$!
for ((i = 0; i < 100; i++)); do
    [ "$(omni_stat services echo in_flight)" = 2 ] && break
    sleep 0.05
done
[ "$(omni_stat services echo in_flight)" = 2 ] ||
    fail "parent and sub-request not both in flight"
kill -KILL $cpid
wait $cpid 2>/dev/null
for ((i = 0; i < 30; i++)); do
    [ "$(grep -c 'echo: request [0-9]* cancelled' "$OMNI_TEST_DIR/echo1.log")" -ge 2 ] &&
        break
    sleep 0.1
done
[ "$(grep -c 'echo: request [0-9]* cancelled' "$OMNI_TEST_DIR/echo1.log")" -ge 2 ] ||
    fail "the sub-request was not cancelled: $(cat "$OMNI_TEST_DIR/echo1.log")"
[ "$(omni_stat services echo in_flight)" = 0 ] || fail "requests left in flight"
# A parent past its deadline takes its sub-request down too.
err=$("$OMNI" call echo sub '{"svc":"echo","op":"sleep","body":{"ms":5000}}' \
    --timeout 1500 2>&1) && fail "sub past its deadline answered: $err"
echo "$err" | grep -q '^omni: TIMEOUT: ' || fail "sub timeout: got '$err'"
for ((i = 0; i < 30; i++)); do
    [ "$(omni_stat services echo in_flight)" = 0 ] && break
    sleep 0.1
done
[ "$(omni_stat services echo in_flight)" = 0 ] ||
    fail "a sub-request outlived its parent's deadline"
out=$("$OMNI" call echo sub '{"svc":"echo","op":"echo","body":[1]}') ||
    fail "sub after a cancelled one failed: $out"
[ "$out" = "[1]" ] || fail "sub: got '$out'"

# SIGTERM drains; a second SIGTERM stops now and fails what is left.
"$OMNI" call echo sleep '{"ms":8000}' >"$OMNI_TEST_DIR/sleep.out" 2>&1 &
cpid=$!
for ((i = 0; i < 50; i++)); do
    [ "$(omni_stat in_flight)" = 1 ] && break
    sleep 0.1
done
[ "$(omni_stat in_flight)" = 1 ] || fail "the sleep is not in flight"
kill -TERM $epid
sleep 0.3
kill -0 $epid 2>/dev/null || fail "the worker did not wait for its request"
kill -TERM $epid
wait $epid
rc=$?
[ $rc = 0 ] || fail "worker stopped by a second SIGTERM: exit $rc, want 0"
grep -q 'signal 15 while draining; stopping now' "$OMNI_TEST_DIR/echo1.log" ||
    fail "no 'stopping now': $(cat "$OMNI_TEST_DIR/echo1.log")"
wait $cpid && fail "the sleep succeeded after its worker stopped"
grep -qE '^omni: (UNAVAILABLE|WORKER_LOST): ' "$OMNI_TEST_DIR/sleep.out" ||
    fail "sleep after the stop: got '$(cat "$OMNI_TEST_DIR/sleep.out")'"

# A worker that cannot reach the broker socket: its sub-requests fail,
# the request is answered with an error, and the worker keeps serving.
start_echo "$OMNI_TEST_DIR/echo2.log" \
    OMNI_ZMQ_ENDPOINT="ipc://$OMNI_TEST_DIR/workers.ipc" \
    OMNI_SOCKET="$OMNI_TEST_DIR/nowhere.sock"
omni_wait_ready 20 || fail "the second worker did not become ready"
err=$("$OMNI" call echo sub '{"svc":"echo","op":"echo","body":{}}' 2>&1) &&
    fail "sub without a broker socket answered: $err"
echo "$err" | grep -qE '^omni: [A-Z_]+: ' || fail "sub without socket: '$err'"
grep -q "cannot connect to the broker at '$OMNI_TEST_DIR/nowhere.sock'" \
    "$OMNI_TEST_DIR/echo2.log" ||
    fail "no connect warning: $(cat "$OMNI_TEST_DIR/echo2.log")"
out=$("$OMNI" call echo echo '{"still":"here"}') || fail "echo after: $out"
[ "$out" = '{"still":"here"}' ] || fail "echo after: got '$out'"
kill -TERM $epid
wait $epid || fail "the second worker did not exit 0 on SIGTERM"

omni_stop || fail "broker did not drain cleanly"
omni_check_log
echo ok
