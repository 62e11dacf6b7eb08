#!/usr/bin/env bash
# t5030-mcp-misbehaving: servers that break the rules, each handled with
# a clear error and nothing else disturbed (tests/mcp/fake_server.py):
# malformed JSON and non-JSON-RPC lines, a reply over mcp.max_line, a
# server that never answers initialize, a tool name listed twice (a
# collision), a call past mcp.call_timeout_ms (TIMEOUT, and the server
# is sent notifications/cancelled), and a broken config entry.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
mcp_need_node
export OMNI_SERVICES=mcp
export OMNI_MCP_MAX_LINE=65536
export OMNI_MCP_INIT_TIMEOUT_MS=1000
export OMNI_MCP_CALL_TIMEOUT_MS=1500
omni_setup
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "fake": {"command": "/usr/bin/python3", "args": ["$MCP_FAKE", "--dup", "--page", "3"]},
  "silent": {"command": "/usr/bin/python3", "args": ["$MCP_FAKE", "--silent"]},
  "everything": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]},
  "bad name": {"command": "x"},
  "broken": {"url": "ftp://example.invalid/"}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 30 fake__echo fake__dup fake__grow everything__echo ||
    fail "tools are not listed"

# Collision: "dup" listed twice (on two pages) is kept once, loudly.
n=$("$OMNI_BIN/omni" call mcp tools '{"servers":["fake"]}' |
    jq_py 'len([t for t in v["tools"] if t["name"] == "fake__dup"])')
[ "$n" = 1 ] || fail "fake__dup listed $n times"
n=$("$OMNI_BIN/omni" call mcp tools '{"servers":["fake"]}' | jq_py 'len(v["tools"])')
[ "$n" = 7 ] || fail "fake lists $n tools, want 7"
grep -q "tool name collision: 'fake__dup' from server 'fake'" "$OMNI_BROKER_LOG" ||
    fail "no collision error in the log"

# Malformed lines are dropped, the reply behind them still arrives.
out=$(mcp_call fake__garbage '{}') || fail "garbage: $out"
echo "$out" | grep -q "after garbage" || fail "garbage: got $out"
grep -q "mcp server 'fake' sent malformed JSON" "$OMNI_BROKER_LOG" ||
    fail "no malformed-JSON warning"
grep -q "mcp server 'fake' sent a message that is not JSON-RPC 2.0" \
    "$OMNI_BROKER_LOG" || fail "no not-JSON-RPC warning"

# A reply over mcp.max_line fails that call at once; the server goes on.
t0=$(date +%s%N)
err=$(mcp_call fake__big '{"bytes":300000}' 2>&1) && fail "big reply passed: $err"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "$err" | grep -q "UPSTREAM" || fail "big reply: got '$err'"
echo "$err" | grep -q "max_line" || fail "big reply: got '$err'"
[ $ms -lt 1400 ] || fail "big reply error took $ms ms (a timeout?)"
grep -q "mcp server 'fake' sent a message over mcp.max_line" "$OMNI_BROKER_LOG" ||
    fail "no max_line error in the log"
out=$(mcp_call fake__echo '{"text":"still here"}') || fail "echo after big: $out"
echo "$out" | grep -q "still here" || fail "echo after big: got $out"

# A call past mcp.call_timeout_ms: TIMEOUT, and the server is told.
err=$(mcp_call fake__sleep '{"ms":5000}' 2>&1) && fail "sleep passed: $err"
echo "$err" | grep -q TIMEOUT || fail "sleep: got '$err'"
out=$(mcp_call fake__cancelled '{}') || fail "cancelled: $out"
[ "$(echo "$out" | jq_py 'len(json.loads(v["content"][0]["text"]))')" -ge 1 ] ||
    fail "server got no notifications/cancelled: $out"

# A server that never answers initialize: named, unavailable, retried.
for ((i = 0; i < 50; i++)); do
    grep -q "mcp server 'silent' failed: no answer to initialize within 1000 ms" \
        "$OMNI_BROKER_LOG" && break
    sleep 0.1
done
grep -q "mcp server 'silent' failed: no answer to initialize within 1000 ms" \
    "$OMNI_BROKER_LOG" || fail "no initialize timeout in the log"
err=$(mcp_call silent__anything '{}' 2>&1) && fail "silent answered: $err"
echo "$err" | grep -q UNAVAILABLE || fail "silent: got '$err'"
echo "$err" | grep -q "'silent' is unavailable: no answer to initialize" ||
    fail "silent: error does not name it and say why: $err"
grep -q "mcp server 'silent' restarts in" "$OMNI_BROKER_LOG" ||
    fail "silent is not restarted"

# Broken config entries are refused by name; the rest runs.
grep -q "mcp server 'broken' refused: 'url' must be an http" "$OMNI_BROKER_LOG" ||
    fail "broken entry not reported"
grep -q "mcp server 'bad name' refused" "$OMNI_BROKER_LOG" ||
    fail "bad name not reported"

# Nothing else disturbed.
out=$(mcp_call everything__echo '{"message":"undisturbed"}') || fail "echo: $out"
echo "$out" | grep -q "Echo: undisturbed" || fail "everything echo: got $out"
out=$(mcp_call fake__echo '{"text":"fine"}') || fail "fake echo: $out"
echo "$out" | grep -q fine || fail "fake echo: got $out"

# A config that is not JSON stops the worker from starting, loudly.
omni_stop || fail "broker did not drain cleanly"
omni_check_log
echo '{"mcpServers": ' >"$OMNI_TEST_DIR/bad.json"
OMNI_MCP_CONFIG=$OMNI_TEST_DIR/bad.json "$OMNI_BUILD/bin/omni-mcp" \
    >"$OMNI_TEST_DIR/bad.log" 2>&1 && fail "omni-mcp started with a bad config"
grep -q "mcp_config: '$OMNI_TEST_DIR/bad.json': bad JSON" "$OMNI_TEST_DIR/bad.log" ||
    fail "bad config: $(cat "$OMNI_TEST_DIR/bad.log")"
echo ok
