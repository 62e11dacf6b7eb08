#!/usr/bin/env bash
# t5040-mcp-front-clients: Omni as an MCP server.  Clients nobody on the
# team wrote - the official SDK's StreamableHTTPClientTransport and
# mcp-inspector-cli - connect to /mcp on the HTTP front, list the merged
# tools (paged) and call them; the SDK client also receives
# notifications/tools/list_changed on its GET stream when an upstream
# server's list changes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
mcp_need_node
[ -x "$OMNI_BIN/omni-http" ] || skip "no $OMNI_BIN/omni-http (HTTP front)"
export OMNI_SERVICES=mcp
omni_setup
port=$(free_port)
export OMNI_HTTP_LISTEN=127.0.0.1:$port
mkdir -p "$OMNI_TEST_DIR/root"
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "everything": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]},
  "memory": {"command": "node", "args": ["$MCP_MEMORY"],
             "env": {"MEMORY_FILE_PATH": "$OMNI_TEST_DIR/memory.jsonl"}},
  "files": {"command": "node", "args": ["$MCP_FILESYSTEM", "$OMNI_TEST_DIR/root"]},
  "files2": {"command": "node", "args": ["$MCP_FILESYSTEM", "$OMNI_TEST_DIR/root"]},
  "dynamic": {"command": "node", "args": ["$MCP_ROOT/tests/mcp/dynamic-server.mjs"]}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 30 everything__echo memory__read_graph files__read_text_file \
    files2__read_text_file dynamic__add_tool || fail "tools are not listed"
for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
url=http://127.0.0.1:$port/mcp
want=$("$OMNI_BIN/omni" call mcp tools '{}' | jq_py 'len(v["tools"])')
client=$MCP_ROOT/tests/mcp/sdk-client.mjs

# The SDK client: list (51 tools: two pages of 50), call.
out=$(cd "$MCP_ROOT" && node "$client" "$url" list) || fail "sdk list: $out"
[ "$(echo "$out" | jq_py 'len(v["tools"])')" = "$want" ] ||
    fail "sdk list: want $want tools, got $(echo "$out" | jq_py 'len(v["tools"])')"
[ "$(echo "$out" | jq_py 'v["pages"] >= 2')" = true ] || fail "sdk list: one page"
[ "$(echo "$out" | jq_py 'v["server"]["name"]')" = omni ] || fail "serverInfo: $out"
[ "$(echo "$out" | jq_py 'v["protocol"]')" = 2025-11-25 ] || fail "version: $out"
out=$(cd "$MCP_ROOT" && node "$client" "$url" call everything__echo '{"message":"sdk"}') ||
    fail "sdk call: $out"
[ "$(echo "$out" | jq_py 'v["result"]["content"][0]["text"]')" = "Echo: sdk" ] ||
    fail "sdk call: got $out"
out=$(cd "$MCP_ROOT" && node "$client" "$url" call files__read_text_file '{"path":"/etc/hostname"}') ||
    fail "sdk call outside root: $out"
[ "$(echo "$out" | jq_py 'v["result"]["isError"]')" = true ] ||
    fail "read outside the root via /mcp: $out"

# list_changed reaches the SDK client's stream.
out=$(cd "$MCP_ROOT" && node "$client" "$url" watch dynamic__add_tool '{"name":"late_tool"}') ||
    fail "sdk watch: $out"
[ "$(echo "$out" | jq_py 'v["list_changed"]')" = true ] ||
    fail "no list_changed on the SDK client: $out"
[ "$(echo "$out" | jq_py 'v["tools_after"]')" = $((want + 1)) ] ||
    fail "tools after the change: $out"

# mcp-inspector-cli (v1; run from its build folder, see MCP.md).
insp=$MCP_NM/@modelcontextprotocol/inspector-cli/build
out=$(cd "$insp" && HOME=$OMNI_TEST_DIR node index.js "$url" --method tools/list 2>"$OMNI_TEST_DIR/insp.err") ||
    fail "inspector tools/list: $out $(cat "$OMNI_TEST_DIR/insp.err")"
echo "$out" | jq_py '[t["name"] for t in v["tools"]]' | grep -q everything__echo ||
    fail "inspector tools/list: got $out"
out=$(cd "$insp" && HOME=$OMNI_TEST_DIR node index.js "$url" --method tools/call \
    --tool-name everything__get-sum --tool-arg a=20 b=22 2>"$OMNI_TEST_DIR/insp.err") ||
    fail "inspector tools/call: $out $(cat "$OMNI_TEST_DIR/insp.err")"
echo "$out" | grep -q 42 || fail "inspector tools/call: got $out"

omni_stop || fail "broker did not drain cleanly"
omni_check_log
echo ok
