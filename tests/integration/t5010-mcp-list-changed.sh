#!/usr/bin/env bash
# t5010-mcp-list-changed: an upstream server's tool list changes at run
# time (tests/mcp/dynamic-server.mjs, built on the official SDK, sends
# notifications/tools/list_changed); the mcp worker lists it again, the
# new tool shows in the catalog and can be called, and a client of
# Omni's own MCP server holding a listen stream gets list_changed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
mcp_need_node
export OMNI_SERVICES=mcp
omni_setup
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "dynamic": {"command": "node", "args": ["$MCP_ROOT/tests/mcp/dynamic-server.mjs"]},
  "everything": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 30 dynamic__add_tool everything__echo ||
    fail "dynamic and everything tools are not listed"

# A client of Omni's MCP server: initialize, then a listen stream.
init='{"session":null,"message":{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t5010","version":"0"}}}}'
out=$("$OMNI_BIN/omni" call mcp rpc "$init") || fail "initialize: $out"
sid=$(echo "$out" | jq_py 'v["session"]')
[ "$(echo "$out" | jq_py 'v["status"]')" = 200 ] || fail "initialize: $out"
[ ${#sid} -ge 16 ] || fail "no session id in $out"
"$OMNI_BIN/omni" call mcp rpc "{\"session\":\"$sid\",\"message\":{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}" |
    grep -q '"status":202' || fail "notifications/initialized not accepted"
"$OMNI_BIN/omni" call mcp listen "{\"session\":\"$sid\"}" --stream \
    >"$OMNI_TEST_DIR/listen.out" 2>&1 &
lpid=$!
omni_track $lpid
sleep 0.5
kill -0 $lpid || fail "listen ended at once: $(cat "$OMNI_TEST_DIR/listen.out")"
before=$("$OMNI_BIN/omni" call mcp rpc "{\"session\":\"$sid\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}}" |
    jq_py 'len(v["message"]["result"]["tools"])')

out=$(mcp_call dynamic__add_tool '{"name":"fresh_tool"}') || fail "add_tool: $out"
mcp_wait_tools 10 dynamic__fresh_tool || fail "new tool not in the catalog"
out=$(mcp_call dynamic__fresh_tool '{}') || fail "fresh_tool: $out"
echo "$out" | grep -q "I am fresh_tool" || fail "fresh_tool: got $out"
for ((i = 0; i < 50; i++)); do
    grep -q 'notifications/tools/list_changed' "$OMNI_TEST_DIR/listen.out" && break
    sleep 0.1
done
grep -q 'notifications/tools/list_changed' "$OMNI_TEST_DIR/listen.out" ||
    fail "listen stream got no list_changed: $(cat "$OMNI_TEST_DIR/listen.out")"
after=$("$OMNI_BIN/omni" call mcp rpc "{\"session\":\"$sid\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}}" |
    jq_py 'len(v["message"]["result"]["tools"])')
[ "$after" = $((before + 1)) ] || fail "tools/list: $before then $after"
grep -q "tool list changed" "$OMNI_BROKER_LOG" || fail "no list_changed in the log"

# A listen for an unknown session is refused.
err=$("$OMNI_BIN/omni" call mcp listen '{"session":"nope"}' --stream 2>&1) &&
    fail "listen on an unknown session: $err"
echo "$err" | grep -q NOT_FOUND || fail "unknown session listen: $err"

# The client goes away: its stream is cancelled at the worker (a listen
# stream never ends by itself, so it would hold up the broker's drain).
kill $lpid
wait $lpid 2>/dev/null
t0=$(date +%s%N)
omni_stop || fail "broker did not drain cleanly"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 5000 ] || fail "drain took $ms ms: the listen was not cancelled"
omni_check_log
echo ok
