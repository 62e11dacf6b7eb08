#!/usr/bin/env bash
# run-local.sh - run the gateway in the foreground (what `make run` does).
#
# With a provider key in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY)
# or a provider base URL, Omni serves that provider.  With neither, it
# starts the provider emulator (tests/fakes/provider.js) on a loopback
# port as the embedded default and says so, so the gateway answers
# without cloud credentials.  Ctrl-C drains and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${OMNI_BUILD:-build}/bin

if [ -z "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${OPENAI_BASE_URL:-}${ANTHROPIC_BASE_URL:-}" ]; then
    command -v node >/dev/null || {
        echo "run-local: no provider key set and node is missing for the emulator" >&2
        exit 1
    }
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    node tests/fakes/provider.js --port 0 >"$fifo" &
    emu=$!
    trap 'kill $emu 2>/dev/null; rm -f "$fifo"' EXIT
    read -r _ port <"$fifo"
    export OPENAI_BASE_URL=http://127.0.0.1:$port/v1
    export ANTHROPIC_BASE_URL=http://127.0.0.1:$port
    export OPENAI_API_KEY=sk-omni-embedded-emulator
    export ANTHROPIC_API_KEY=sk-ant-omni-embedded-emulator
    export OMNI_DEFAULT_MODEL=${OMNI_DEFAULT_MODEL:-openai/gpt-4o-mini}
    echo "run-local: no provider key set: serving from the embedded provider emulator on 127.0.0.1:$port (deterministic replies, no cloud calls)" >&2
fi

# The socket is the default one (README, "Configuration") unless
# OMNI_SOCKET says otherwise, so `omni ping` in another shell finds it;
# the broker's first log line names it.
echo "run-local: HTTP front ${OMNI_HTTP_LISTEN-127.0.0.1:8080}" >&2
"$bin/omni-broker" "$@" &
broker=$!
trap 'kill -TERM $broker 2>/dev/null; wait $broker; kill ${emu:-} 2>/dev/null; rm -f "${fifo:-}"' EXIT INT TERM
wait $broker
