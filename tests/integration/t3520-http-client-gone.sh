#!/usr/bin/env bash
# t3520-http-client-gone: an HTTP client that disconnects cancels its
# request all the way to the provider: before the first chunk of a
# stream (emulator hang), in the middle of a stream (emulator slow) and
# while waiting for a plain reply.  Each time the llm service has
# nothing in flight within a second of the kill, omni-http logs the
# disconnect, the worker logs the cancel, and the front still serves.
# Then SIGTERM with a stream in flight: it finishes, new ones are refused.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v node >/dev/null || skip "node is not installed"
command -v curl >/dev/null || skip "curl is not installed"
[ -f "$root/tests/fakes/provider.js" ] || skip "no provider emulator"
export OMNI_SERVICES=llm OMNI_LOG_LEVEL=debug
omni_setup
[ -x "$OMNI_BIN/omni-llm" ] || skip "no $OMNI_BIN/omni-llm"
[ -x "$OMNI_BIN/omni-http" ] || fail "no $OMNI_BIN/omni-http"
t=$OMNI_TEST_DIR

omni_start_fake
export OPENAI_API_KEY=sk-test-t3520-0123456789abcdef
port=$(free_port)
base=http://127.0.0.1:$port
OMNI_HTTP_LISTEN=127.0.0.1:$port omni_start_broker
omni_wait_ready || fail "broker not ready"
for ((i = 0; i < 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] &&
        break
    sleep 0.1
done

llm_in_flight() { omni_stat services llm in_flight; }

# gone NAME STREAM TEXT WAIT_FOR: start a chat with curl, wait until the
# request is in flight (and, with WAIT_FOR, until curl got that text),
# kill curl, then expect nothing in flight within a second.
gone() {
    local name=$1 stream=$2 text=$3 want=$4 i
    curl -s -N --max-time 30 -o "$t/$name.out" "$base/v1/chat/completions" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"openai/gpt-4o-mini\",\"stream\":$stream,
             \"messages\":[{\"role\":\"user\",\"content\":\"$text\"}]}" &
    local cpid=$!
    for ((i = 0; i < 100; i++)); do
        [ "$(llm_in_flight)" = 1 ] &&
            { [ -z "$want" ] || grep -q "$want" "$t/$name.out"; } && break
        sleep 0.05
    done
    [ "$(llm_in_flight)" = 1 ] || fail "$name: the request is not in flight"
    [ -z "$want" ] || grep -q "$want" "$t/$name.out" ||
        fail "$name: no '$want' before the kill: $(cat "$t/$name.out")"
    local before
    before=$(grep -c 'cancelled by the broker' "$OMNI_BROKER_LOG")
    kill -KILL $cpid
    wait $cpid 2>/dev/null
    for ((i = 0; i < 20; i++)); do
        [ "$(llm_in_flight)" = 0 ] && break
        sleep 0.05
    done
    [ "$(llm_in_flight)" = 0 ] ||
        fail "$name: still in flight 1 s after the client went away"
    for ((i = 0; i < 20; i++)); do
        [ "$(grep -c 'cancelled by the broker' "$OMNI_BROKER_LOG")" -gt \
            "$before" ] && break
        sleep 0.05
    done
    [ "$(grep -c 'cancelled by the broker' "$OMNI_BROKER_LOG")" -gt \
        "$before" ] || fail "$name: the worker did not log a cancel"
}

# Before the first chunk: the upstream never answers.
gone hang true "wait forever [fault:hang]" ""
# Mid-stream: one word every 400 ms, killed after the first words.
gone slow true "[fault:slow=400] one two three four five six seven eight" \
    'Echo:'
# A plain request waiting for its reply.
gone plain false "wait forever too [fault:hang]" ""

n=$(grep -c 'client disconnected' "$OMNI_BROKER_LOG")
[ "$n" -ge 3 ] || fail "omni-http logged $n disconnects, want 3"
curl -s "$base/metrics" >"$t/metrics"
grep -q '^omni_http_requests_total{route="chat",code="499"} 3$' \
    "$t/metrics" || fail "metrics: $(grep requests_total "$t/metrics")"

# The front still answers.
code=$(curl -s -o "$t/b" -w '%{http_code}' --max-time 20 \
    "$base/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"openai/gpt-4o-mini",
         "messages":[{"role":"user","content":"still there"}]}')
[ "$code" = 200 ] && grep -q 'Echo: still there' "$t/b" ||
    fail "chat after the disconnects: $code $(cat "$t/b")"

# SIGTERM with a stream in flight: new requests are turned away at once,
# the stream runs to [DONE], then the broker exits 0.
curl -s -N --max-time 30 -o "$t/drain.out" "$base/v1/chat/completions" \
    -H 'Content-Type: application/json' \
    -d '{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":
         "user","content":"[fault:slow=200] drain one two three four"}]}' &
cpid=$!
for ((i = 0; i < 100; i++)); do
    grep -q 'Echo:' "$t/drain.out" 2>/dev/null && break
    sleep 0.05
done
grep -q 'Echo:' "$t/drain.out" || fail "drain: the stream did not start"
kill -TERM "$OMNI_BROKER_PID"
sleep 0.2
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health")
# Refused by the broker's own front; 503 from a separate omni-http
# (http.mode process), which runs until the broker stops its children.
[ "$code" = 000 ] || [ "$code" = 503 ] || fail "drain: a new request got $code"
wait $cpid || fail "drain: curl exit $?"
grep -q 'data: \[DONE\]' "$t/drain.out" ||
    fail "drain: the stream was cut: $(cat "$t/drain.out")"
grep -q 'four' "$t/drain.out" || fail "drain: words lost: $(cat "$t/drain.out")"
omni_stop || fail "drain: broker exit status $?, want 0"
omni_check_log
echo "ok: disconnects before, during and without a stream cancel upstream;"
echo "ok: SIGTERM lets a stream finish and turns new requests away"
