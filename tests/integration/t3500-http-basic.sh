#!/usr/bin/env bash
# t3500-http-basic: omni-http without an LLM.  /health is 503 while the
# broker is down and 200 once omni-http has reconnected to it; /metrics
# is valid Prometheus text with the broker's service gauges; 404, 405,
# 413 and 400 come back as OpenAI error JSON; SIGTERM exits 0; spawned
# by the broker or served by it, client keys guard /v1 and /mcp but not
# /health; an unknown http.mode does not start.
. "$(dirname "$0")/lib.sh"
omni_setup
[ -x "$OMNI_BIN/omni-http" ] || fail "no $OMNI_BIN/omni-http"
command -v curl >/dev/null || skip "curl is not installed"

port=$(free_port)
base=http://127.0.0.1:$port
t=$OMNI_TEST_DIR

# req METHOD PATH [curl args...]: body to $t/body, prints the status.
req() {
    local m=$1 p=$2
    shift 2
    curl -s -o "$t/body" -D "$t/headers" -w '%{http_code}' -X "$m" \
        --max-time 10 "$@" "$base$p"
}

# check_error STATUS CODE: $t/body is OpenAI error JSON with that code.
check_error() {
    /usr/bin/python3 - "$t/body" "$1" "$2" <<'PY' || fail "bad error body for $1: $(cat "$t/body")"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
status, code = int(sys.argv[2]), sys.argv[3]
assert isinstance(e["message"], str) and e["message"], "message"
assert e["code"] == code, "code %r, want %r" % (e["code"], code)
assert "param" in e, "param"
want = {400: "invalid_request_error", 401: "authentication_error",
        404: "not_found_error", 405: "invalid_request_error",
        413: "invalid_request_error", 503: "api_error"}[status]
assert e["type"] == want, "type %r, want %r" % (e["type"], want)
PY
}

# --- omni-http started before the broker: 503, then 200 after reconnect.
OMNI_HTTP_LISTEN=127.0.0.1:$port OMNI_HTTP_MAX_BODY=4096 \
    "$OMNI_BIN/omni-http" >"$t/http.log" 2>&1 &
hpid=$!
omni_track $hpid
for ((i = 0; i < 50; i++)); do
    code=$(req GET /health) && [ "$code" != 000 ] && break
    sleep 0.1
done
[ "$code" = 503 ] || fail "health before the broker: got $code, want 503"
grep -q '"status":"unavailable"' "$t/body" ||
    fail "health 503 body: $(cat "$t/body")"
[ "$(req GET /v1/models)" = 503 ] || fail "models without a broker: not 503"
check_error 503 unavailable

omni_start_broker
omni_wait_ready || fail "broker not ready"
for ((i = 0; i < 100; i++)); do
    [ "$(req GET /health)" = 200 ] && break
    sleep 0.1
done
[ "$(req GET /health)" = 200 ] ||
    fail "health after the broker started: $(cat "$t/body")"
grep -q '"status":"ok"' "$t/body" || fail "health body: $(cat "$t/body")"
grep -q 'connected to the broker' "$t/http.log" || fail "no reconnect logged"

# --- errors in OpenAI JSON.
[ "$(req GET /v1/nope)" = 404 ] || fail "unknown path: not 404"
check_error 404 not_found
[ "$(req DELETE /v1/chat/completions)" = 405 ] || fail "DELETE chat: not 405"
check_error 405 method_not_allowed
grep -qi '^Allow: POST' "$t/headers" || fail "405 without Allow: POST"
[ "$(req POST /v1/chat/completions -H 'Content-Type: application/json' \
    --data-binary '{"model": ')" = 400 ] || fail "invalid JSON: not 400"
check_error 400 bad_request
grep -q 'invalid JSON body' "$t/body" || fail "400 message: $(cat "$t/body")"
head -c 6000 /dev/zero | tr '\0' 'a' >"$t/big"
[ "$(req POST /v1/embeddings --data-binary @"$t/big")" = 413 ] ||
    fail "body over OMNI_HTTP_MAX_BODY: not 413"
check_error 413 too_large
# A route whose service is not configured: the broker's NO_SERVICE.
[ "$(req GET /v1/models)" = 404 ] || fail "models without llm: not 404"
check_error 404 no_service

# --- /metrics parses as Prometheus text and carries the broker's gauges.
[ "$(req GET /metrics)" = 200 ] || fail "metrics: not 200"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$t/headers" ||
    fail "metrics content type: $(grep -i content-type "$t/headers")"
/usr/bin/python3 - "$t/body" <<'PY' || fail "metrics do not parse"
import re, sys
text = open(sys.argv[1]).read()
assert text.endswith("\n")
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\\n])*"'
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9.eE+-]+|[+-]Inf|NaN)$"
                    % (name_re, label, label))
types, done, current, values = {}, set(), None, {}
for line in text.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert name not in types, "TYPE twice: " + name
        assert kind in ("counter", "gauge", "histogram"), line
        types[name] = kind
        if current:
            done.add(current)
        current = name
        continue
    if line.startswith("#"):
        assert line.startswith("# HELP "), line
        continue
    m = sample.match(line)
    assert m, "bad sample line: " + line
    fam = m.group(1)
    if types.get(current) == "histogram":
        fam = re.sub(r"_(bucket|sum|count)$", "", fam)
    assert fam == current and fam not in done, "out of family: " + line
    values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
def v(k):
    assert k in values, "missing " + k
    return values[k]
assert v('omni_http_requests_total{route="health",code="503"}') >= 1
assert v('omni_http_requests_total{route="unknown",code="404"}') == 1
assert v('omni_http_requests_total{route="chat",code="405"}') == 1
assert v('omni_http_errors_total{code="too_large"}') == 1
assert v('omni_http_errors_total{code="no_service"}') == 1
assert v("omni_http_in_flight") == 1
assert v("omni_broker_up") == 1
assert v('omni_service_requests{service="echo"}') >= 0
assert v('omni_service_in_flight{service="echo"}') == 0
for k in ("queued", "errors", "worker_lost", "overloaded"):
    v('omni_service_%s{service="echo"}' % k)
b = [v('omni_http_request_duration_seconds_bucket{route="health",le="%s"}'
       % le) for le in ("0.001", "0.01", "0.1", "1", "10", "60", "+Inf")]
assert b == sorted(b), "buckets not cumulative"
assert b[-1] == v('omni_http_request_duration_seconds_count{route="health"}')
PY

# --- SIGTERM: drain and exit 0.
kill -TERM $hpid
for ((i = 0; i < 50; i++)); do
    kill -0 $hpid 2>/dev/null || break
    sleep 0.1
done
kill -0 $hpid 2>/dev/null && fail "omni-http still running 5 s after SIGTERM"
wait $hpid
rc=$?
[ $rc -eq 0 ] || fail "omni-http exited with $rc after SIGTERM, want 0"
omni_stop || fail "broker stop failed"

# --- served by the broker (http.mode broker, the default) and spawned
# by it as omni-http (process), with client keys.
for mode in broker process; do
    port=$(free_port)
    base=http://127.0.0.1:$port
    : >"$OMNI_BROKER_LOG"
    OMNI_HTTP_LISTEN=127.0.0.1:$port OMNI_CLIENT_KEYS=k-test-one,k-test-two \
        OMNI_HTTP_MODE=$mode omni_start_broker
    omni_wait_ready || fail "broker not ready ($mode)"
    for ((i = 0; i < 100; i++)); do
        [ "$(req GET /health)" = 200 ] && break
        sleep 0.1
    done
    [ "$(req GET /health)" = 200 ] || fail "$mode: health not 200"
    [ "$(req GET /v1/models)" = 401 ] || fail "$mode: no key: not 401"
    check_error 401 unauthorized
    [ "$(req GET /v1/models -H 'Authorization: Bearer k-wrong')" = 401 ] ||
        fail "$mode: wrong key: not 401"
    [ "$(req POST /mcp -H 'Content-Type: application/json' -d '{}')" = 401 ] ||
        fail "$mode: /mcp without a key: not 401"
    [ "$(req GET /v1/models -H 'Authorization: Bearer k-test-two')" = 404 ] ||
        fail "$mode: good key: got $(cat "$t/body"), want the broker's 404"
    check_error 404 no_service
    grep -q 'k-test-two' "$OMNI_BROKER_LOG" && fail "a client key was logged"
    hpid=$(pgrep -P "$OMNI_BROKER_PID" -f omni-http)
    if [ $mode = broker ]; then
        [ -z "$hpid" ] || fail "broker mode started omni-http $hpid"
        grep -q '"prog":"omni-broker".*listening on http://' \
            "$OMNI_BROKER_LOG" || fail "the broker does not serve HTTP"
        omni_stop || fail "broker exit status not 0 ($mode)"
        continue
    fi
    grep -q 'started omni-http' "$OMNI_BROKER_LOG" ||
        fail "the broker did not start omni-http"
    [ -n "$hpid" ] || fail "no omni-http child of the broker"
    omni_stop || fail "broker exit status not 0"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$hpid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$hpid" 2>/dev/null && fail "omni-http outlived the broker"
done

# --- an unknown http.mode is a configuration error.
OMNI_HTTP_LISTEN=127.0.0.1:$(free_port) OMNI_HTTP_MODE=thread \
    "$OMNI_BIN/omni-broker" >"$t/bad-mode.log" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "http.mode=thread: exit $rc, want 1"
grep -q "http.mode" "$t/bad-mode.log" || fail "bad mode not named: $(cat "$t/bad-mode.log")"
grep -E 'Sanitizer|runtime error' "$t/http.log" "$OMNI_BROKER_LOG" &&
    fail "sanitizer reports in the logs"
echo "ok: health 503 then 200, metrics, error JSON, SIGTERM, keys"
