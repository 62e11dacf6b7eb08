#!/usr/bin/env bash
# t5000-mcp-servers: the mcp worker against reference servers nobody on
# the team wrote - server-everything over stdio and over Streamable HTTP,
# server-memory, server-filesystem - lists all their tools under
# server__tool names, sorted, and calls them; a file read outside the
# filesystem root comes back as isError, not as an error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
mcp_need_node
export OMNI_SERVICES=mcp
omni_setup

port=$(free_port)
mcp_start_everything_http "$port"
mkdir -p "$OMNI_TEST_DIR/root"
echo "hello from the root" >"$OMNI_TEST_DIR/root/note.txt"
echo "not yours" >"$OMNI_TEST_DIR/outside.txt"
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "everything": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]},
  "web": {"type": "http", "url": "http://127.0.0.1:$port/mcp"},
  "memory": {"command": "node", "args": ["$MCP_MEMORY"],
             "env": {"MEMORY_FILE_PATH": "$OMNI_TEST_DIR/memory.jsonl"}},
  "files": {"command": "node",
            "args": ["$MCP_FILESYSTEM", "$OMNI_TEST_DIR/root"]}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 30 everything__echo everything__get-sum web__echo \
    memory__create_entities memory__read_graph files__read_text_file ||
    fail "tools of all servers are not listed"

tools=$("$OMNI_BIN/omni" call mcp tools '{}') || fail "mcp tools failed"
echo "$tools" | jq_py '[t["name"] for t in v["tools"]] == sorted(t["name"] for t in v["tools"])' |
    grep -qx true || fail "tools are not sorted"
servers=$(echo "$tools" | jq_py 'sorted({t["server"] for t in v["tools"]})')
[ "$servers" = '["everything", "files", "memory", "web"]' ] ||
    fail "servers: got $servers"
echo "$tools" | jq_py 'all(set(t) >= {"name","description","inputSchema","server"} for t in v["tools"])' |
    grep -qx true || fail "a tool lacks name/description/inputSchema/server"
n=$("$OMNI_BIN/omni" call mcp tools '{"servers":["memory"]}' | jq_py 'len(v["tools"])')
[ "$n" = 9 ] || fail "memory filter: got $n tools, want 9"
n=$("$OMNI_BIN/omni" call mcp tools '{"allowed_tools":["echo"]}' | jq_py 'len(v["tools"])')
[ "$n" = 2 ] || fail "allowed_tools echo: got $n tools, want 2"
"$OMNI_BIN/omni" mcp tools | grep -q '^files__read_text_file ' ||
    fail "omni mcp tools does not list files__read_text_file"

out=$(mcp_call everything__echo '{"message":"hi"}') || fail "echo: $out"
[ "$(echo "$out" | jq_py 'v["content"][0]["text"]')" = "Echo: hi" ] ||
    fail "echo: got $out"
[ "$(echo "$out" | jq_py 'v["isError"]')" = false ] || fail "echo isError: $out"
out=$(mcp_call everything__get-sum '{"a":19,"b":23}') || fail "get-sum: $out"
echo "$out" | grep -q 42 || fail "get-sum: got $out"
out=$(mcp_call web__echo '{"message":"over http"}') || fail "web echo: $out"
[ "$(echo "$out" | jq_py 'v["content"][0]["text"]')" = "Echo: over http" ] ||
    fail "web echo: got $out"
out=$(mcp_call everything__get-structured-content '{"location":"New York"}') ||
    fail "structured: $out"
[ "$(echo "$out" | jq_py '"structuredContent" in v')" = true ] ||
    fail "structuredContent missing: $out"

out=$(mcp_call memory__create_entities '{"entities":[{"name":"omni","entityType":"gateway","observations":["routes MCP calls"]}]}') ||
    fail "create_entities: $out"
out=$(mcp_call memory__read_graph '{}') || fail "read_graph: $out"
echo "$out" | grep -q "routes MCP calls" || fail "read_graph: got $out"

out=$(mcp_call files__read_text_file "{\"path\":\"$OMNI_TEST_DIR/root/note.txt\"}") ||
    fail "read inside the root: $out"
echo "$out" | grep -q "hello from the root" || fail "read inside: got $out"
out=$(mcp_call files__read_text_file "{\"path\":\"$OMNI_TEST_DIR/outside.txt\"}")
[ "$(echo "$out" | jq_py 'v["isError"]')" = true ] ||
    fail "read outside the root: want isError true, got $out"
echo "$out" | grep -q "not yours" && fail "read outside leaked the file"
"$OMNI_BIN/omni" mcp call files__read_text_file \
    "{\"path\":\"$OMNI_TEST_DIR/outside.txt\"}" >/dev/null 2>&1 &&
    fail "omni mcp call exits 0 on an isError result"

err=$("$OMNI_BIN/omni" call mcp call '{"name":"everything__nope","arguments":{}}' 2>&1) &&
    fail "unknown tool answered: $err"
echo "$err" | grep -q NOT_FOUND || fail "unknown tool: got '$err'"

out=$("$OMNI_BIN/omni" call mcp prompts '{}') || fail "prompts: $out"
echo "$out" | jq_py '[p["name"] for p in v["prompts"]]' | grep -q 'everything__' ||
    fail "prompts: got $out"
out=$("$OMNI_BIN/omni" call mcp resources '{}') || fail "resources: $out"
[ "$(echo "$out" | jq_py 'len(v["resources"]) > 0')" = true ] ||
    fail "resources: got $out"

omni_stop || fail "broker did not drain cleanly"
omni_check_log
grep -q "stderr:" "$OMNI_BROKER_LOG" || fail "no server stderr in the log"
echo ok
