#!/usr/bin/env bash
# t5020-mcp-server-killed: a stdio MCP server (server-everything) is
# killed with SIGKILL in the middle of a long tool call.  That call gets
# a clear UNAVAILABLE error naming the server and how it died, the
# worker restarts the server, and later calls work; calls to the other
# server are not disturbed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
mcp_need_node
export OMNI_SERVICES=mcp
omni_setup
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "victim": {"command": "sh", "args": ["-c",
     "echo \$\$ > $OMNI_TEST_DIR/victim.pid; exec node $MCP_EVERYTHING stdio"]},
  "bystander": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 30 victim__trigger-long-running-operation bystander__echo ||
    fail "tools are not listed"
pid=$(cat "$OMNI_TEST_DIR/victim.pid")
kill -0 "$pid" || fail "no victim process"

mcp_call victim__trigger-long-running-operation '{"duration":8,"steps":4}' \
    >"$OMNI_TEST_DIR/call.out" 2>&1 &
cpid=$!
mcp_call bystander__trigger-long-running-operation '{"duration":2,"steps":2}' \
    >"$OMNI_TEST_DIR/other.out" 2>&1 &
opid=$!
sleep 1
kill -KILL "$pid"
t0=$(date +%s%N)
wait $cpid && fail "the interrupted call succeeded: $(cat "$OMNI_TEST_DIR/call.out")"
ms=$((($(date +%s%N) - t0) / 1000000))
out=$(cat "$OMNI_TEST_DIR/call.out")
echo "$out" | grep -q UNAVAILABLE || fail "interrupted call: got '$out'"
echo "$out" | grep -q "'victim'" || fail "error does not name the server: $out"
echo "$out" | grep -q "signal 9" || fail "error does not say how it died: $out"
[ $ms -lt 3000 ] || fail "the error took $ms ms after the kill"
wait $opid || fail "the other server's call failed: $(cat "$OMNI_TEST_DIR/other.out")"

# The server comes back (a new process) and answers again.
ok=
for ((i = 0; i < 100; i++)); do
    if out=$(mcp_call victim__echo '{"message":"back"}' 2>&1) &&
        echo "$out" | grep -q "Echo: back"; then
        ok=1
        break
    fi
    sleep 0.1
done
[ -n "$ok" ] || fail "victim did not come back: $out"
[ "$(cat "$OMNI_TEST_DIR/victim.pid")" != "$pid" ] || fail "same pid after restart"
grep -q "mcp server 'victim' failed: server process exited on signal 9" \
    "$OMNI_BROKER_LOG" || fail "no failure line in the log"
grep -q "mcp server 'victim' restarts in" "$OMNI_BROKER_LOG" ||
    fail "no restart line in the log"
for i in 1 2 3; do
    mcp_call victim__get-sum "{\"a\":$i,\"b\":1}" | grep -q "is $((i + 1))" ||
        fail "call $i after the restart failed"
done
omni_stop || fail "broker did not drain cleanly"
omni_check_log
echo ok
