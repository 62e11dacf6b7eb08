#!/usr/bin/env bash
# t3000-fake-provider - self-test of the provider emulator
# (tests/fakes/provider.js): every route, scripted tool calls, every
# fault, the call counter and cassette replay, checked with curl.
set -u
cd "$(dirname "$0")/../.." || exit 2

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

command -v node >/dev/null || { echo "skip: node is not installed"; exit 77; }
command -v curl >/dev/null || { echo "skip: curl is not installed"; exit 77; }

dir=$(mktemp -d /tmp/omni-t3000.XXXXXX) || fail "mktemp"
fake_pid=
cleanup() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid"
    rm -rf "$dir"
}
trap cleanup EXIT

node tests/fakes/provider.js --port 0 >"$dir/out" 2>"$dir/err" &
fake_pid=$!
for _ in $(seq 50); do
    grep -q '^listening ' "$dir/out" && break
    sleep 0.1
done
port=$(awk '/^listening /{print $2}' "$dir/out")
[ -n "$port" ] || fail "fake did not start: $(cat "$dir/err")"
base=http://127.0.0.1:$port

# req METHOD PATH [BODY [HEADER...]]: body in $dir/body, headers in
# $dir/hdr, status in $status, curl's exit code in $crc.
req() {
    local method=$1 path=$2 body=${3:-} args=()
    shift 3 2>/dev/null || shift $#
    for h in "$@"; do args+=(-H "$h"); done
    if [ -n "$body" ]; then args+=(-H 'content-type: application/json' \
        --data-binary "$body"); fi
    status=$(curl -s -N --max-time "${TIMEOUT:-10}" -X "$method" \
        -D "$dir/hdr" -o "$dir/body" -w '%{http_code}' "${args[@]}" \
        "$base$path")
    crc=$?
}

# js EXPR: evaluate EXPR with b = the body parsed as JSON (or, for SSE,
# e = array of {event, data}), print the result.
js() {
    node -e '
const fs = require("fs");
const raw = fs.readFileSync(process.argv[1], "utf8");
let b = null, e = [];
try { b = JSON.parse(raw); } catch (x) {}
for (const blk of raw.split("\n\n")) {
    const ev = {event: "message", data: ""};
    for (const l of blk.split("\n")) {
        if (l.startsWith("event: ")) ev.event = l.slice(7);
        if (l.startsWith("data: ")) ev.data = l.slice(6);
    }
    if (ev.data) e.push(ev);
}
const j = (s) => JSON.parse(s);
console.log(eval(process.argv[2]));' "$dir/body" "$1"
}

expect() { # got want what
    [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

header() {
    grep -i "^$1:" "$dir/hdr" | head -1 | cut -d' ' -f2- | tr -d '\r'
}

user() { # a chat body with one user message
    printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}]%s}' \
        "$1" "${2:-}"
}

# ---- OpenAI chat, JSON and SSE
req POST /v1/chat/completions "$(user 'hello there')"
expect "$status" 200 "chat status"
expect "$(js 'b.choices[0].message.content')" "Echo: hello there" "chat text"
expect "$(js 'b.object + " " + b.choices[0].finish_reason')" \
    "chat.completion stop" "chat object"
expect "$(js 'b.usage.total_tokens === b.usage.prompt_tokens + b.usage.completion_tokens')" \
    true "chat usage"
[ -n "$(header x-request-id)" ] || fail "no x-request-id"
expect "$(header content-type)" application/json "chat content-type"

req POST /v1/chat/completions "$(user 'hello there' \
    ',"stream":true,"stream_options":{"include_usage":true}')"
expect "$status" 200 "stream status"
expect "$(header content-type)" "text/event-stream; charset=utf-8" \
    "stream content-type"
expect "$(js 'e[e.length-1].data')" "[DONE]" "stream end"
expect "$(js 'e.slice(0,-1).map(x=>j(x.data).choices[0]?.delta.content||"").join("")')" \
    "Echo: hello there" "stream text"
expect "$(js 'e.length > 4')" true "stream chunks"
expect "$(js 'j(e[0].data).choices[0].delta.role')" assistant "stream role"
expect "$(js 'j(e[e.length-2].data).choices.length + " " + j(e[e.length-2].data).usage.total_tokens')" \
    "0 $(js 'j(e[e.length-2].data).usage.total_tokens')" "usage chunk"

req POST /v1/chat/completions "$(user 'a b c d e' ',"max_tokens":2')"
expect "$(js 'b.choices[0].message.content + "|" + b.choices[0].finish_reason')" \
    "Echo: a|length" "max_tokens"

# ---- scripted tool calls and the tool result turn
tools=',"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]'
req POST /v1/chat/completions \
    "$(user 'use tool get_weather {\"city\":\"Paris\"}' "$tools")"
expect "$(js 'b.choices[0].finish_reason')" tool_calls "tool finish"
expect "$(js 'b.choices[0].message.tool_calls[0].function.name')" \
    get_weather "tool name"
expect "$(js 'b.choices[0].message.tool_calls[0].function.arguments')" \
    '{"city":"Paris"}' "tool args"
req POST /v1/chat/completions \
    "$(user 'use tool get_weather {\"city\":\"Paris\"}' "$tools,\"stream\":true")"
expect "$(js 'e.slice(0,-1).map(x=>j(x.data).choices[0].delta.tool_calls?.[0].function.arguments||"").join("")')" \
    '{"city":"Paris"}' "streamed tool args"
req POST /v1/chat/completions "$(user 'weather?' "$tools")" \
    'x-fake-tool-call: get_weather'
expect "$(js 'b.choices[0].message.tool_calls[0].function.name')" \
    get_weather "header tool call"
req POST /v1/chat/completions '{"model":"m","messages":[
  {"role":"user","content":"weather?"},
  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},
  {"role":"tool","tool_call_id":"call_1","content":"Sunny, 22C"}]'"$tools}"
expect "$(js 'b.choices[0].message.content')" \
    "Tool get_weather returned: Sunny, 22C" "tool result turn"

# ---- embeddings
req POST /v1/embeddings '{"model":"e","input":["a","b"],"dimensions":16}'
expect "$(js 'b.data.length + " " + b.data[1].embedding.length')" "2 16" \
    "float embeddings"
cp "$dir/body" "$dir/float.json"
req POST /v1/embeddings '{"model":"e","input":"a","encoding_format":"base64"}'
expect "$(js 'typeof b.data[0].embedding')" string "base64 embedding"
expect "$(js 'Buffer.from(b.data[0].embedding,"base64").length')" 32 \
    "base64 default dimension 8"
req POST /v1/embeddings '{"model":"e","input":"a","dimensions":16,"encoding_format":"base64"}'
same=$(node -e '
const f = JSON.parse(require("fs").readFileSync(process.argv[1])).data[0].embedding;
const bb = Buffer.from(JSON.parse(require("fs").readFileSync(process.argv[2])).data[0].embedding, "base64");
const v = [...Array(f.length)].map((_, i) => bb.readFloatLE(4 * i));
console.log(v.every((x, i) => Math.abs(x - f[i]) < 1e-6));' "$dir/float.json" "$dir/body")
expect "$same" true "base64 equals float"
req POST /v1/embeddings '{"model":"e"}'
expect "$status" 400 "embeddings without input"

# ---- models
req GET /v1/models
expect "$(js 'b.object + " " + b.data[0].id')" "list gpt-4o-mini" "openai models"
req GET /v1/models "" 'x-api-key: k' 'anthropic-version: 2023-06-01'
expect "$(js 'b.data[0].type + " " + b.has_more')" "model false" \
    "anthropic models"

# ---- Anthropic messages, JSON and SSE
amsg() {
    printf '{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"%s"}]%s}' \
        "$1" "${2:-}"
}
req POST /v1/messages "$(amsg 'hi there')" 'x-api-key: k'
expect "$status" 200 "messages status"
expect "$(js 'b.type + " " + b.content[0].text + " " + b.stop_reason')" \
    "message Echo: hi there end_turn" "messages reply"
[ -n "$(header request-id)" ] || fail "no request-id"
req POST /v1/messages "$(amsg 'hi there' ',"stream":true')" 'x-api-key: k'
expect "$(header content-type)" "text/event-stream; charset=utf-8" \
    "anthropic stream content-type"
expect "$(js 'e.map(x=>x.event).join(",")')" \
    "message_start,content_block_start,ping,content_block_delta,content_block_delta,content_block_delta,content_block_stop,message_delta,message_stop" \
    "anthropic event sequence"
expect "$(js 'e.every(x=>x.event===j(x.data).type)')" true "event names"
atools=',"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"stream":true'
req POST /v1/messages "$(amsg 'use tool get_weather {\"city\":\"Paris\"}' "$atools")"
expect "$(js 'e.filter(x=>x.event==="content_block_delta").map(x=>j(x.data).delta.partial_json).join("")')" \
    '{"city":"Paris"}' "anthropic tool input"
expect "$(js 'j(e[e.length-2].data).delta.stop_reason')" tool_use \
    "anthropic tool stop"
req POST /v1/messages "$(amsg 'why' ',"thinking":{"type":"enabled","budget_tokens":1024}')"
expect "$(js 'b.content.map(c=>c.type).join(",")')" thinking,text "thinking"
req POST /v1/messages '{"model":"c","messages":[{"role":"user","content":"x"}]}'
expect "$status" 400 "anthropic needs max_tokens"
expect "$(js 'b.type + " " + b.error.type')" "error invalid_request_error" \
    "anthropic error shape"

# ---- faults
req POST /v1/chat/completions "$(user 'x')" 'x-fake-fault: 429'
expect "$status" 429 "429 by header"
expect "$(header retry-after)" 1 "retry-after"
expect "$(header retry-after-ms)" 200 "retry-after-ms"
expect "$(js 'b.error.code')" rate_limit_exceeded "429 body"
for want in 429 429 200 200; do
    req POST /v1/chat/completions "$(user '[fault:429x2] count me')"
    expect "$status" "$want" "429x2 sequence"
done
req POST /v1/chat/completions "$(user '[fault:500]')"
expect "$status $(js 'b.error.type')" "500 server_error" "500"
req POST /v1/chat/completions "$(user '[fault:500x1] once')"
expect "$status" 500 "500x1 first"
req POST /v1/chat/completions "$(user '[fault:500x1] once')"
expect "$status" 200 "500x1 second"
req POST /v1/messages "$(amsg '[fault:529]')"
expect "$status $(js 'b.error.type')" "529 overloaded_error" "529 anthropic"
req POST /v1/chat/completions "$(user '[fault:529]')"
expect "$status" 503 "529 on the openai route"
req POST /v1/messages "$(amsg '[fault:429]')"
expect "$status $(js 'b.error.type')" "429 rate_limit_error" "429 anthropic"
req POST /v1/embeddings '{"model":"e","input":"[fault:500]"}'
expect "$status" 500 "fault on embeddings"

t0=$(date +%s%N)
req POST /v1/chat/completions "$(user '[fault:slow=100] a b' ',"stream":true')"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "$status" 200 "slow status"
[ "$ms" -ge 400 ] || fail "slow=100 stream took only ${ms} ms"
expect "$(js 'e[e.length-1].data')" "[DONE]" "slow stream completes"

TIMEOUT=1 req POST /v1/chat/completions "$(user '[fault:hang]')"
expect "$crc" 28 "hang times out (curl exit code)"

req POST /v1/chat/completions "$(user '[fault:drop] a b c d e' ',"stream":true')"
[ "$crc" -ne 0 ] || fail "drop: curl saw a complete stream"
grep -q 'DONE' "$dir/body" && fail "drop: stream was not cut"
grep -q '^data: ' "$dir/body" || fail "drop: no chunk before the cut"

req POST /v1/chat/completions "$(user '[fault:malformed]')"
expect "$status" 200 "malformed status"
expect "$(js 'b === null')" true "malformed body is not JSON"
req POST /v1/chat/completions "$(user '[fault:malformed]' ',"stream":true')"
grep -q '^data: {"id": "broken"' "$dir/body" || fail "malformed stream"

req POST /v1/chat/completions '{"model":"nonexistent-x","messages":[]}'
expect "$status $(js 'b.error.code')" "404 model_not_found" "unknown model"
req POST /v1/chat/completions '{not json'
expect "$status" 400 "invalid JSON request"
req POST /v1/nope '{}'
expect "$status" 404 "unknown route"

# ---- counter
req GET /_fake/stats
calls=$(js 'b.calls')
[ "$calls" -ge 30 ] || fail "stats: only $calls calls"
expect "$(js 'b.by_path["/v1/messages"] === 7')" true "stats by_path"
req POST /_fake/reset '{}'
req POST /v1/chat/completions "$(user 'one')"
req GET /_fake/stats
expect "$(js 'JSON.stringify(b)')" \
    '{"calls":1,"by_path":{"/v1/chat/completions":1}}' "stats after reset"
req GET /_fake/last
expect "$(js 'b.body.messages[0].content')" one "last request"

# ---- replay of a recorded cassette
fixtures=${OMNI_SHARED_DIR:-../shared}/fixtures
if [ -f "$fixtures/openai/test_run_stream_sync_streams_real_model.yaml" ] &&
    python3 -c 'import yaml' 2>/dev/null; then
    cas=openai/test_run_stream_sync_streams_real_model.yaml
    python3 -c 'import sys,yaml
d=yaml.safe_load(open(sys.argv[1]))
sys.stdout.write(d["interactions"][0]["response"]["body"]["string"])' \
        "$fixtures/$cas" >"$dir/want"
    req POST /v1/chat/completions '{}' "x-fake-replay: $cas"
    expect "$status" 200 "replay status"
    cmp -s "$dir/body" "$dir/want" || fail "replay body differs"
    expect "$(header content-type)" "text/event-stream; charset=utf-8" \
        "replay content-type"
    cas=anthropic/test_model_name_suggestion[anthropic].yaml
    req POST /v1/messages '{}' "x-fake-replay: $cas"
    expect "$status $(js 'b.error.type')" "404 not_found_error" \
        "replayed error"
else
    echo "note: replay not checked (no shared/fixtures or python3-yaml)"
fi
echo "ok: fake provider on port $port"
