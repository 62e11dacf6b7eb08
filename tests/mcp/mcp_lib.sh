# mcp_lib.sh - helpers for the MCP integration tests (t5*), sourced after
# tests/integration/lib.sh.
#
#   mcp_need_node                  skip (77) without node or node_modules
#   mcp_start_everything_http PORT server-everything over Streamable HTTP
#                                  on 127.0.0.1:PORT (tracked for cleanup)
#   mcp_wait_tools SECS NAME...    until `omni call mcp tools` lists them
#   mcp_call NAME JSON             mcp/call; prints the CallToolResult
#   jq_py EXPR                     evaluate a python expression on the
#                                  JSON read from stdin (bound to v)

MCP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MCP_NM=$MCP_ROOT/node_modules
MCP_EVERYTHING=$MCP_NM/@modelcontextprotocol/server-everything/dist/index.js
MCP_MEMORY=$MCP_NM/@modelcontextprotocol/server-memory/dist/index.js
MCP_FILESYSTEM=$MCP_NM/@modelcontextprotocol/server-filesystem/dist/index.js
MCP_FAKE=$MCP_ROOT/tests/mcp/fake_server.py

mcp_need_node() {
    command -v node >/dev/null || skip "node is not installed"
    [ -f "$MCP_EVERYTHING" ] || skip "node_modules is absent (run npm ci)"
}

mcp_start_everything_http() {
    local port=$1 i
    PORT=$port NODE_OPTIONS="--require $MCP_ROOT/tests/mcp/loopback.cjs" \
        node "$MCP_EVERYTHING" streamableHttp \
        >"$OMNI_TEST_DIR/everything-http.log" 2>&1 &
    omni_track $!
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$OMNI_TEST_DIR/everything-http.log" >&2
    fail "server-everything did not listen on port $port"
}

jq_py() {
    /usr/bin/python3 -c 'import json, sys
v = json.load(sys.stdin)
r = eval(sys.argv[1])
print(json.dumps(r) if isinstance(r, (dict, list, bool)) or r is None else r)' "$1"
}

mcp_wait_tools() {
    local secs=$1 i out
    shift
    for ((i = 0; i < secs * 10; i++)); do
        out=$("$OMNI_BIN/omni" call mcp tools '{}' 2>/dev/null) || out='{}'
        if echo "$out" | /usr/bin/python3 -c 'import json, sys
names = {t["name"] for t in json.load(sys.stdin).get("tools", [])}
sys.exit(0 if all(n in names for n in sys.argv[1:]) else 1)' "$@"; then
            return 0
        fi
        sleep 0.1
    done
    echo "tools after ${secs}s: $out" >&2
    return 1
}

mcp_call() {
    "$OMNI_BIN/omni" call mcp call "$(/usr/bin/python3 -c 'import json, sys
print(json.dumps({"name": sys.argv[1], "arguments": json.loads(sys.argv[2])}))' "$1" "$2")"
}
