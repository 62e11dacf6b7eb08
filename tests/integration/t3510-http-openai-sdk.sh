#!/usr/bin/env bash
# t3510-http-openai-sdk: the official openai npm SDK, pointed at Omni's
# HTTP front (llm worker + provider emulator behind it): chat, streamed
# chat, tool calls, embeddings (float and base64), models, errors
# (tests/sdk/openai_sdk.mjs); then the wire format seen with curl: SSE
# framing, Retry-After, the provider key kept out of logs and replies.
# The front runs in the broker (http.mode broker), so the SDK also covers
# that mode; the other HTTP tests run the default, a separate omni-http.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v node >/dev/null || skip "node is not installed"
command -v curl >/dev/null || skip "curl is not installed"
[ -d "$root/node_modules/openai" ] || skip "node_modules/openai missing (npm ci)"
[ -f "$root/tests/fakes/provider.js" ] || skip "no provider emulator"
export OMNI_SERVICES=llm
omni_setup
[ -x "$OMNI_BIN/omni-llm" ] || skip "no $OMNI_BIN/omni-llm"
[ -x "$OMNI_BIN/omni-http" ] || fail "no $OMNI_BIN/omni-http"
t=$OMNI_TEST_DIR

omni_start_fake
export OPENAI_API_KEY=sk-test-t3510-upstream-secret-0123456789
port=$(free_port)
base=http://127.0.0.1:$port
OMNI_HTTP_LISTEN=127.0.0.1:$port OMNI_HTTP_MODE=broker omni_start_broker
omni_wait_ready || fail "broker not ready"
for ((i = 0; i < 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] &&
        break
    sleep 0.1
done

OMNI_URL=$base timeout 120 node "$root/tests/sdk/openai_sdk.mjs" \
    >"$t/sdk.out" 2>&1
rc=$?
cat "$t/sdk.out"
[ $rc -eq 0 ] || fail "openai SDK checks failed (rc $rc)"

# SSE framing on the wire: text/event-stream, one data line per event,
# blank-line separated, [DONE] last.
curl -s -N -D "$t/h" -o "$t/sse" --max-time 20 "$base/v1/chat/completions" \
    -H 'Content-Type: application/json' \
    -d '{"model":"openai/gpt-4o-mini","stream":true,
         "messages":[{"role":"user","content":"frame this"}]}' ||
    fail "streamed chat with curl failed"
grep -qi '^Content-Type: text/event-stream' "$t/h" ||
    fail "stream content type: $(cat "$t/h")"
/usr/bin/python3 - "$t/sse" <<'PY' || fail "bad SSE framing: $(head -c 600 "$t/sse")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n"), "no [DONE] at the end"
events = raw.split("\n\n")[:-1]
text = ""
for ev in events[:-1]:
    assert ev.startswith("data: ") and "\n" not in ev, repr(ev)
    c = json.loads(ev[6:])
    assert c["object"] == "chat.completion.chunk"
    text += c["choices"][0]["delta"].get("content") or ""
assert text == "Echo: frame this", text
PY

# A provider 429: status kept, Retry-After from the retry hint.
code=$(curl -s -o "$t/b" -D "$t/h" -w '%{http_code}' --max-time 20 \
    "$base/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"openai/gpt-4o-mini",
         "messages":[{"role":"user","content":"x [fault:429]"}]}')
[ "$code" = 429 ] || fail "provider 429: got $code $(cat "$t/b")"
grep -qi '^Retry-After: [0-9]' "$t/h" || fail "429 without Retry-After"
grep -q '"type":"rate_limit_error"' "$t/b" || fail "429 body: $(cat "$t/b")"

# The provider key never leaves the process that uses it.
grep -q "$OPENAI_API_KEY" "$OMNI_BROKER_LOG" "$t/sdk.out" "$t/b" &&
    fail "the provider key appears in a log or a reply"
omni_check_log
echo "ok: openai SDK chat, stream, tools, embeddings, models, errors"
