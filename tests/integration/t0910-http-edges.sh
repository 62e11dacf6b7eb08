#!/usr/bin/env bash
# t0910-http-edges: omni-http run by hand, around its broker link and
# its process edges: start-up errors (bad or busy address: exit 1; no
# address: exit 0), a bad OMNI_PARENT_FD (ignored), no broker yet (503,
# then the link connects by itself once the broker is up), the broker
# going away with a request in flight (502, then 503, then reconnected
# to the next broker), and EOF on OMNI_PARENT_FD (exit 0).
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v node >/dev/null || skip "node is not installed"
[ -x "$OMNI_BIN/omni-llm" ] || skip "no $OMNI_BIN/omni-llm"
export OMNI_SERVICES=llm
omni_setup
HTTP=$OMNI_BIN/omni-http
export OMNI_LOG_FORMAT=text
# The provider emulator: a chat with [fault:hang] stays in flight.
omni_start_fake
export OPENAI_API_KEY=sk-test

# ---- start-up errors

OMNI_HTTP_LISTEN=bogus "$HTTP" 2>"$OMNI_TEST_DIR/err" &&
    fail "omni-http started on 'bogus'"
grep -q "bad http_listen 'bogus'" "$OMNI_TEST_DIR/err" ||
    fail "bad address: $(cat "$OMNI_TEST_DIR/err")"
OMNI_HTTP_LISTEN="" "$HTTP" 2>"$OMNI_TEST_DIR/err" ||
    fail "omni-http with no address: exit $?, want 0"
grep -q 'http_listen is empty: the HTTP front is disabled' \
    "$OMNI_TEST_DIR/err" || fail "no address: $(cat "$OMNI_TEST_DIR/err")"
OMNI_CONFIG=$OMNI_TEST_DIR/none.conf "$HTTP" 2>"$OMNI_TEST_DIR/err" &&
    fail "omni-http started with a missing config file"
grep -q "none.conf" "$OMNI_TEST_DIR/err" ||
    fail "missing config: $(cat "$OMNI_TEST_DIR/err")"

# ---- no broker yet

port=$(free_port)
export OMNI_HTTP_LISTEN=127.0.0.1:$port
URL=http://127.0.0.1:$port
# The parent pipe, a FIFO: we hold the only writer (fd 7, kept from the
# other processes started here); omni-http reads it as fd 8.
mkfifo "$OMNI_TEST_DIR/parent"
exec 7<>"$OMNI_TEST_DIR/parent"
OMNI_PARENT_FD=8 "$HTTP" 8<"$OMNI_TEST_DIR/parent" 7>&- \
    >"$OMNI_TEST_DIR/http.log" 2>&1 &
hpid=$!
omni_track "$hpid"
for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
OMNI_HTTP_LISTEN=$OMNI_HTTP_LISTEN "$HTTP" 2>"$OMNI_TEST_DIR/err" &&
    fail "a second omni-http bound the same address"
grep -q "cannot listen on '127.0.0.1:$port'" "$OMNI_TEST_DIR/err" ||
    fail "busy address: $(cat "$OMNI_TEST_DIR/err")"

code() { curl -s -o "$OMNI_TEST_DIR/body" -w '%{http_code}' "$@"; }
chat='{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi [fault:hang]"}]}'
[ "$(code "$URL/health")" = 503 ] || fail "/health with no broker: not 503"
[ "$(code "$URL/v1/models")" = 503 ] || fail "/v1/models with no broker"
grep -q '"broker unavailable"' "$OMNI_TEST_DIR/body" ||
    fail "no broker: body $(cat "$OMNI_TEST_DIR/body")"
grep -q "cannot connect to '$OMNI_SOCKET'.*retrying" "$OMNI_TEST_DIR/http.log" ||
    fail "no retry warning: $(cat "$OMNI_TEST_DIR/http.log")"

# ---- the broker comes up: the link connects by itself

OMNI_HTTP_LISTEN="" omni_start_broker 7>&-
omni_wait_ready || fail "broker not ready"
for ((i = 0; i < 100; i++)); do
    [ "$(code "$URL/health")" = 200 ] && break
    sleep 0.1
done
[ "$(code "$URL/health")" = 200 ] || fail "/health never became 200"
grep -q 'connected to the broker' "$OMNI_TEST_DIR/http.log" ||
    fail "no 'connected': $(cat "$OMNI_TEST_DIR/http.log")"

# ---- the broker goes away with a request in flight

# SIGKILL: the broker cannot say goodbye; its workers get SIGTERM.
curl -s -o "$OMNI_TEST_DIR/inflight" -w '%{http_code}' \
    -H 'content-type: application/json' -d "$chat" \
    "$URL/v1/chat/completions" >"$OMNI_TEST_DIR/inflight.code" 7>&- &
cpid=$!
for ((i = 0; i < 50; i++)); do
    [ "$(omni_stat in_flight)" = 1 ] && break
    sleep 0.1
done
[ "$(omni_stat in_flight)" = 1 ] || fail "the hanging chat is not in flight"
kill -KILL "$OMNI_BROKER_PID"
for k in $(ps -o pid= --ppid "$OMNI_BROKER_PID" 2>/dev/null); do
    kill -TERM "$k" 2>/dev/null
done
wait "$OMNI_BROKER_PID" 2>/dev/null
OMNI_BROKER_PID=
wait $cpid
c=$(cat "$OMNI_TEST_DIR/inflight.code")
[ "$c" = 502 ] || fail "request when the broker died: HTTP $c, want 502"
grep -q 'broker connection lost' "$OMNI_TEST_DIR/inflight" ||
    fail "in flight when the broker died: $(cat "$OMNI_TEST_DIR/inflight")"
for ((i = 0; i < 50; i++)); do
    grep -q 'broker connection lost' "$OMNI_TEST_DIR/http.log" && break
    sleep 0.1
done
grep -q 'broker connection lost' "$OMNI_TEST_DIR/http.log" ||
    fail "the lost link was not noticed: $(cat "$OMNI_TEST_DIR/http.log")"
[ "$(code "$URL/v1/models")" = 503 ] || fail "/v1/models after the broker died"
rm -f "$OMNI_SOCKET"

# ---- a new broker: reconnected

OMNI_HTTP_LISTEN="" omni_start_broker 7>&-
omni_wait_ready || fail "second broker not ready"
for ((i = 0; i < 100; i++)); do
    [ "$(code "$URL/health")" = 200 ] && break
    sleep 0.1
done
[ "$(code "$URL/health")" = 200 ] || fail "no reconnection to the new broker"
[ "$(grep -c 'connected to the broker' "$OMNI_TEST_DIR/http.log")" -ge 2 ] ||
    fail "one connection only: $(cat "$OMNI_TEST_DIR/http.log")"

# ---- parent pipe EOF: exit 0 at once

exec 7>&-
for ((i = 0; i < 50; i++)); do
    kill -0 $hpid 2>/dev/null || break
    sleep 0.1
done
kill -0 $hpid 2>/dev/null && fail "omni-http outlived its parent pipe"
wait $hpid || fail "omni-http exit status $? after parent EOF, want 0"
grep -q 'broker went away: exiting' "$OMNI_TEST_DIR/http.log" ||
    fail "no exit message: $(cat "$OMNI_TEST_DIR/http.log")"

omni_stop || fail "broker did not drain cleanly"
omni_check_log
echo ok
