#!/usr/bin/env bash
# coldstart.sh - Lambda cold start of Omni under tests/fakes/lambda_emu.py.
#
#   bench/lambda/coldstart.sh [N]            host build ($OMNI_BUILD/bin)
#   LAMBDA_ZIP=x86_64 bench/lambda/coldstart.sh [N]
#                                            the zips of `make lambda`
#
# Runs N inits (default 20): each one starts a fresh environment (the
# first invoke after a shutdown) and reads the emulator's timings:
#   extension  exec of extensions/omni -> its first /event/next, which it
#              calls once the broker listens and every worker is READY
#   register   exec of extensions/omni -> /register (socket bound)
#   bootstrap  exec of bootstrap -> its first /runtime/invocation/next
#   init       exec of extensions/omni -> init done (both called next)
# and prints the median and the 90th percentile of each, in ms.
# Services: OMNI_SERVICES (default llm); no network is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20}
OMNI_BUILD=${OMNI_BUILD:-build}
export OMNI_SERVICES=${OMNI_SERVICES:-llm}
export PYTHONDONTWRITEBYTECODE=1
export OMNI_LOG_LEVEL=${OMNI_LOG_LEVEL:-warn}
KEEP_LOG=${KEEP_LOG:-}
export OPENAI_API_KEY=${OPENAI_API_KEY:-sk-bench} OPENAI_BASE_URL=http://127.0.0.1:9/v1
T=$(mktemp -d /tmp/omni-coldstart.XXXXXX)
emu=
cleanup() {
    [ -z "$emu" ] || kill "$emu" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -z "$KEEP_LOG" ] || cp "$T/emu.log" "$KEEP_LOG"
    rm -rf "$T"
}
trap cleanup EXIT
export OMNI_SOCKET=$T/omni.sock

if [ -n "${LAMBDA_ZIP:-}" ]; then
    mkdir -p "$T/opt" "$T/task"
    unzip -q "build/lambda/$LAMBDA_ZIP/layer.zip" -d "$T/opt"
    unzip -q "build/lambda/$LAMBDA_ZIP/function.zip" -d "$T/task"
    what="zips build/lambda/$LAMBDA_ZIP"
else
    bin=$(cd "$OMNI_BUILD/bin" && pwd)
    mkdir -p "$T/opt/extensions" "$T/opt/bin" "$T/task"
    ln -s "$bin/omni-extension" "$T/opt/extensions/omni"
    for b in "$bin"/omni-*; do ln -s "$b" "$T/opt/bin/"; done
    ln -s "$bin/bootstrap" "$T/task/bootstrap"
    export OMNI_WORKER_DIR=$T/opt/bin
    what="$OMNI_BUILD/bin"
fi

/usr/bin/python3 tests/fakes/lambda_emu.py --opt "$T/opt" --task "$T/task" \
    --port 0 >"$T/emu.out" 2>"$T/emu.log" &
emu=$!
for ((i = 0; i < 100; i++)); do
    grep -qs '^listening' "$T/emu.out" && break
    sleep 0.1
done
port=$(awk '/^listening/{print $2}' "$T/emu.out")
[ -n "$port" ] || { cat "$T/emu.log" >&2; exit 1; }

PYTHONPATH=tests/fakes /usr/bin/python3 - "$port" "$n" "$what" <<'PY'
import json, sys, urllib.request
from lambda_emu import invoke

port, n, what = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = "http://127.0.0.1:%d" % port
for i in range(n):
    r = invoke(port, {"service": "omni", "op": "ping"})
    if "x-amz-function-error" in r["headers"]:
        sys.exit("invoke failed: %r" % r["body"])
    urllib.request.urlopen(urllib.request.Request(
        base + "/_emu/shutdown", data=b"", method="POST"), timeout=10)
st = json.load(urllib.request.urlopen(base + "/_emu/state"))
rows = {"extension": [], "register": [], "bootstrap": [], "init": []}
for i in st["inits"]:
    s = i["ext_spawn"]["omni"]
    rows["extension"].append((i["ext_first_next"]["omni"] - s) * 1e3)
    rows["register"].append((i["ext_register"]["omni"] - s) * 1e3)
    rows["bootstrap"].append((i["rt_first_next"] - i["rt_spawn"]) * 1e3)
    rows["init"].append((i["done"] - s) * 1e3)

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]

print("cold start under lambda_emu, %d inits, %s" % (len(st["inits"]), what))
for k, v in rows.items():
    print("  %-10s median %6.1f ms   p90 %6.1f ms" % (k, pct(v, .5),
                                                    pct(v, .9)))
PY
