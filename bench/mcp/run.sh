#!/usr/bin/env bash
# bench/mcp/run.sh - MCP tool calls per second through Omni: omni-bench
# -> broker -> omni-mcp -> server-everything over stdio (tool "echo"),
# at 1, 8 and 64 calls in flight, next to the same server driven
# directly (bench/mcp/floor.py, no Omni).  See bench/mcp/README.md.
#
# Knobs: OMNI_BUILD (build), N1 (2000), N8 (10000), N64 (20000),
# BENCH_OUT (keep the raw JSON lines).  Exit 0 measured, 1 a step
# failed, 77 binaries or node_modules missing.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${OMNI_BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/bin
everything=$root/node_modules/@modelcontextprotocol/server-everything/dist/index.js
for b in omni-broker omni-mcp omni omni-bench; do
    [ -x "$bin/$b" ] || { echo "skip: no $bin/$b"; exit 77; }
done
[ -f "$everything" ] && command -v node >/dev/null ||
    { echo "skip: node or node_modules missing"; exit 77; }

dir=$(mktemp -d /tmp/omni-mcp-bench.XXXXXX)
broker=
cleanup() {
    [ -n "$broker" ] && kill -TERM "$broker" 2>/dev/null && wait "$broker"
    rm -rf "$dir"
}
trap cleanup EXIT
out=${BENCH_OUT:-$dir/results.jsonl}
: >"$out"

export OMNI_SOCKET=$dir/omni.sock OMNI_HTTP_LISTEN= OMNI_SERVICES=mcp
export OMNI_LOG_LEVEL=warn OMNI_MCP_CONFIG=$dir/mcp.json
cat >"$OMNI_MCP_CONFIG" <<JSON
{"mcpServers": {"everything": {"command": "node", "args": ["$everything", "stdio"]}}}
JSON
"$bin/omni-broker" >"$dir/broker.log" 2>&1 &
broker=$!
for ((i = 0; i < 300; i++)); do
    "$bin/omni" call mcp tools '{"servers":["everything"]}' 2>/dev/null |
        grep -q everything__echo && break
    sleep 0.1
done
"$bin/omni" call mcp call '{"name":"everything__echo","arguments":{"message":"warm"}}' \
    >/dev/null || { cat "$dir/broker.log"; echo "FAIL: no everything__echo"; exit 1; }

body='{"name":"everything__echo","arguments":{"message":"bench"}}'
printf '%-12s %12s %10s %10s %14s %10s\n' "in flight" "omni call/s" "p50 us" \
    "p99 us" "direct call/s" "p50 us"
for spec in "1 ${N1:-2000}" "8 ${N8:-10000}" "64 ${N64:-20000}"; do
    set -- $spec
    p=$1 n=$2
    "$bin/omni-bench" -s "$OMNI_SOCKET" -c 1 -n $((n / 10)) -p "$p" \
        --svc mcp --op call --body "$body" >/dev/null 2>&1
    r=$("$bin/omni-bench" -s "$OMNI_SOCKET" -c 1 -n "$n" -p "$p" \
        --svc mcp --op call --body "$body") ||
        { echo "FAIL: omni-bench at $p in flight: $r"; exit 1; }
    f=$(/usr/bin/python3 "$root/bench/mcp/floor.py" "$n" "$p" node \
        "$everything" stdio) || { echo "FAIL: floor at $p in flight"; exit 1; }
    echo "{\"inflight\":$p,\"omni\":$r,\"direct\":$f}" >>"$out"
    /usr/bin/python3 -c 'import json, sys
o, f = json.loads(sys.argv[1]), json.loads(sys.argv[2])
bad = o["sent"] - o["ok"]
print("%-12s %12d %10d %10d %14d %10d%s" % (sys.argv[3], o["rps"],
      o["p50_us"], o["p99_us"], f["calls_per_s"], f["p50_us"],
      "   (%d errors: %s)" % (bad, o["errors"]) if bad else ""))' "$r" "$f" "$p"
done
