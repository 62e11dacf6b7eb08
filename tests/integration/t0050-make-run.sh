#!/usr/bin/env bash
# t0050-make-run: the README's run command (deployment/run-local.sh, what
# `make run` does) on a machine like a fresh one: no provider key, no
# OMNI_SOCKET, and a runtime directory whose parents do not exist yet.
# It serves chat (JSON and SSE) from the embedded provider emulator,
# says so, answers `omni ping` on the default socket, and SIGTERM stops
# everything it started.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
command -v curl >/dev/null || skip "curl is not installed"
omni_setup
t=$OMNI_TEST_DIR
port=$(free_port)
base=http://127.0.0.1:$port
xdg=$t/fresh/run/user
(
    unset OMNI_SOCKET OPENAI_API_KEY ANTHROPIC_API_KEY OPENAI_BASE_URL \
        ANTHROPIC_BASE_URL OMNI_CONFIG
    export XDG_RUNTIME_DIR=$xdg OMNI_HTTP_LISTEN=127.0.0.1:$port
    export OMNI_SERVICES=llm OMNI_BUILD
    exec deployment/run-local.sh
) >"$t/run.out" 2>"$OMNI_BROKER_LOG" &
rpid=$!
omni_track $rpid
for ((i = 0; i < 200; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] &&
        break
    kill -0 $rpid 2>/dev/null || fail "run-local.sh exited early"
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] ||
    fail "no 200 from /health within 20 s"
grep -q 'serving from the embedded provider emulator' "$OMNI_BROKER_LOG" ||
    fail "the emulator default is not announced"
[ -S "$xdg/omni/omni.sock" ] || fail "no socket at the default path"
XDG_RUNTIME_DIR=$xdg OMNI_SOCKET= "$OMNI_BIN/omni" ping >/dev/null ||
    fail "omni ping does not find the broker on the default socket"

curl -s "$base/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"hello make run"}]}' \
    >"$t/chat.json"
/usr/bin/python3 - "$t/chat.json" <<'PY' || fail "chat: $(cat "$t/chat.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["object"] == "chat.completion", r
assert "hello make run" in r["choices"][0]["message"]["content"], r
PY
curl -sN "$base/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    >"$t/sse.txt"
grep -q '"object":"chat.completion.chunk"' "$t/sse.txt" &&
    [ "$(tail -n 2 "$t/sse.txt" | head -n 1)" = "data: [DONE]" ] ||
    fail "stream: $(cat "$t/sse.txt")"

emu=$(pgrep -P $rpid -f provider.js)
kill -TERM $rpid
for ((i = 0; i < 100; i++)); do
    kill -0 $rpid 2>/dev/null || break
    sleep 0.1
done
kill -0 $rpid 2>/dev/null && fail "run-local.sh still running 10 s after SIGTERM"
[ -n "$emu" ] || fail "no emulator was started"
for ((i = 0; i < 50; i++)); do
    kill -0 "$emu" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$emu" 2>/dev/null && fail "the emulator outlived it by 5 s"
[ -S "$xdg/omni/omni.sock" ] && fail "the socket was left behind"
echo "ok: make run serves from the emulator on a fresh machine and stops cleanly"
