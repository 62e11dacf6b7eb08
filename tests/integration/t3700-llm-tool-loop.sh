#!/usr/bin/env bash
# t3700-llm-tool-loop: a chat naming MCP tools in the Responses API shape
# ({"type":"mcp","server_label":...}) runs the model's tool calls on
# server-everything (stdio) through the mcp service and feeds the
# results back, streamed and not: the answer carries the tool's result
# and an omni.tool_calls trace; calls of one turn run in parallel; the
# client's own functions end the loop; tool errors and unknown tools go
# back to the model; the loop limit (OMNI_TOOL_LOOP_MAX) holds;
# cancelling the chat cancels the tool call; without the mcp service
# the chat fails UNAVAILABLE.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"
mcp_need_node
export OMNI_SERVICES=llm,mcp
export OMNI_TOOL_LOOP_MAX=3
omni_setup

omni_start_fake
export ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE
cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "everything": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]}}}
JSON
export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json

omni_start_broker
omni_wait_ready || fail "broker not ready"
mcp_wait_tools 30 everything__echo everything__get-sum ||
    fail "server-everything's tools are not listed"

omni_py - <<'PY' || exit 1
import json, os, time, urllib.request
from omnitest import Conn, body, check

fake = "http://127.0.0.1:%s" % os.environ["FAKE"]
c = Conn()
nid = [0]
MCP = {"type": "mcp", "server_label": "everything",
       "allowed_tools": ["echo", "get-sum", "trigger-long-running-operation"]}

def calls():
    return json.load(urllib.request.urlopen(fake + "/_fake/stats"))["calls"]

def last():
    return json.load(urllib.request.urlopen(fake + "/_fake/last"))["body"]

def chat(text, stream=False, tools=None, model="openai/gpt-4o-mini", **kw):
    nid[0] += 1
    b = {"model": model, "messages": [{"role": "user", "content": text}],
         "tools": tools if tools is not None else [MCP]}
    if model.startswith("anthropic/"):
        b["max_tokens"] = 256
    b.update(kw)
    if stream:
        b["stream"] = True
    c.req(nid[0], "llm", "chat", b, stream=stream)
    return c.until_end(nid[0], 30)

def stream_text(chunks):
    text, finish, ids, roles, omni = "", [], set(), 0, []
    for m in chunks:
        j = body(m)
        check(j["object"] == "chat.completion.chunk", "got chunk %r" % j)
        ids.add(j["id"])
        if "omni" in j:
            omni.append(j["omni"])
        for ch in j["choices"]:
            d = ch["delta"]
            text += d.get("content") or ""
            roles += "role" in d
            if ch.get("finish_reason"):
                finish.append(ch["finish_reason"])
    check(len(ids) == 1, "chunks under %d ids: %r" % (len(ids), ids))
    check(roles == 1, "role sent %d times" % roles)
    check([m["seq"] for m in chunks] == list(range(len(chunks))),
          "chunk seq out of order")
    return text, finish, omni

ECHO = 'use tool everything__echo {"message": "ping from omni"}'
WANT = "Tool everything__echo returned: Echo: ping from omni"

# Non-streamed, through the OpenAI and the Anthropic route.
for model in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"):
    n0 = calls()
    _, end = chat(ECHO, model=model)
    check(end["t"] == "final", "%s: got %r" % (model, end))
    r = body(end)
    msg = r["choices"][0]["message"]
    check(msg["content"] == WANT, "%s: got %r, want %r"
          % (model, msg["content"], WANT))
    check(r["choices"][0]["finish_reason"] == "stop", "got %r" % r)
    tc = r["omni"]["tool_calls"]
    check(len(tc) == 1 and tc[0]["name"] == "everything__echo" and
          tc[0]["arguments"] == {"message": "ping from omni"} and
          tc[0]["isError"] is False, "trace: got %r" % tc)
    check(r["omni"]["tool_loop"] == {"turns": 2, "limit_reached": False},
          "tool_loop: got %r" % r["omni"]["tool_loop"])
    check(calls() - n0 == 2, "%s: %d upstream calls, want 2"
          % (model, calls() - n0))
    check(r["usage"]["total_tokens"] > 0, "no usage: %r" % r.get("usage"))

# What the model saw on the second turn: function tools, no mcp entry,
# the assistant's tool call and the tool's answer.
_, end = chat(ECHO)
up = last()
names = [t["function"]["name"] for t in up["tools"]]
check(sorted(names) == ["everything__echo", "everything__get-sum",
                        "everything__trigger-long-running-operation"],
      "upstream tools: got %r" % names)
check(all(t["type"] == "function" and
          t["function"]["parameters"]["type"] == "object"
          for t in up["tools"]), "tools not in function form: %r"
      % up["tools"])
roles = [m["role"] for m in up["messages"]]
check(roles == ["user", "assistant", "tool"], "messages: got %r" % roles)
check(up["messages"][2]["content"] == "Echo: ping from omni",
      "tool message: got %r" % up["messages"][2])
check(up["messages"][1]["tool_calls"][0]["id"] ==
      up["messages"][2]["tool_call_id"], "tool_call_id does not match")

# Streamed: one coherent chunk stream.
for model in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"):
    chunks, end = chat(ECHO, stream=True, model=model,
                       stream_options={"include_usage": True})
    check(end["t"] == "final", "%s stream: got %r" % (model, end))
    text, finish, omni = stream_text(chunks)
    check(text == WANT, "%s stream: got %r" % (model, text))
    check(finish == ["stop"], "finish reasons: got %r" % finish)
    rounds = [o["tool_calls"] for o in omni if "tool_loop" not in o]
    check(len(rounds) == 1 and rounds[0][0]["name"] == "everything__echo",
          "round chunks: got %r" % omni)
    check(omni[-1]["tool_loop"]["turns"] == 2, "last omni: %r" % omni[-1])
    usage = [body(m)["usage"] for m in chunks if body(m).get("usage")]
    check(len(usage) == 1 and usage[0]["total_tokens"] > 0,
          "usage chunks: got %r" % usage)

# Two calls in one turn run in parallel; both results come back.
_, end = chat('use tool everything__echo {"message": "a1"} '
              'use tool everything__get-sum {"a": 19, "b": 23}')
r = body(end)
text = r["choices"][0]["message"]["content"]
check("Echo: a1" in text and "42" in text, "parallel: got %r" % text)
check([t["name"] for t in r["omni"]["tool_calls"]] ==
      ["everything__echo", "everything__get-sum"], "trace: %r"
      % r["omni"]["tool_calls"])

# The client's own function ends the loop and goes back to it.
mine = {"type": "function", "function": {"name": "my_fn", "parameters":
        {"type": "object", "properties": {"x": {"type": "integer"}}}}}
for stream in (False, True):
    chunks, end = chat('use tool my_fn {"x": 1}', stream=stream,
                       tools=[MCP, mine])
    check(end["t"] == "final", "client fn: got %r" % end)
    if stream:
        _, finish, _ = stream_text(chunks)
        check(finish == ["tool_calls"], "client fn stream: %r" % finish)
        tcs = [tc for m in chunks for ch in body(m)["choices"]
               for tc in ch["delta"].get("tool_calls") or []]
        check(len(tcs) == 1 and tcs[0]["function"]["name"] == "my_fn" and
              json.loads(tcs[0]["function"]["arguments"]) == {"x": 1},
              "client fn stream calls: %r" % tcs)
    else:
        r = body(end)
        check(r["choices"][0]["finish_reason"] == "tool_calls",
              "client fn: got %r" % r)
        tc = r["choices"][0]["message"]["tool_calls"][0]
        check(tc["function"]["name"] == "my_fn", "got %r" % tc)
        check(r["omni"]["tool_loop"]["turns"] == 1, "got %r" % r["omni"])

# A tool's own failure and a made-up tool go back to the model.
_, end = chat('use tool everything__get-sum {"a": "x"}')
r = body(end)
check(r["omni"]["tool_calls"][0]["isError"] is True, "got %r" % r["omni"])
check("returned: error: " in r["choices"][0]["message"]["content"],
      "tool error: got %r" % r["choices"][0]["message"]["content"])
_, end = chat('use tool nosuch_tool {}')
r = body(end)
check("there is no tool named 'nosuch_tool'" in
      r["choices"][0]["message"]["content"], "got %r" % r)

# The loop limit: a model that always asks for a tool gets 3 turns.
for stream in (False, True):
    n0 = calls()
    chunks, end = chat('always use tool everything__echo {"message": "x"}',
                       stream=stream)
    check(end["t"] == "final", "limit: got %r" % end)
    check(calls() - n0 == 3, "limit: %d upstream calls, want 3"
          % (calls() - n0))
    if stream:
        _, finish, omni = stream_text(chunks)
        check(finish == ["length"], "limit stream: %r" % finish)
        check(omni[-1]["tool_loop"] == {"turns": 3, "limit_reached": True},
              "limit stream omni: %r" % omni[-1])
    else:
        r = body(end)
        check(r["choices"][0]["finish_reason"] == "length", "got %r" % r)
        check("tool_calls" not in r["choices"][0]["message"], "got %r" % r)
        check(r["omni"]["tool_loop"] == {"turns": 3, "limit_reached": True},
              "got %r" % r["omni"])
        check(len(r["omni"]["tool_calls"]) == 2, "got %r" % r["omni"])

# Errors: a server that is not configured; a bad entry.
_, end = chat(ECHO, tools=[{"type": "mcp", "server_label": "nope"}])
check(end["t"] == "error" and end["code"] == "NOT_FOUND" and
      "'nope'" in end["message"], "unknown server: got %r" % end)
_, end = chat(ECHO, tools=[{"type": "mcp"}])
check(end["t"] == "error" and end["code"] == "BAD_REQUEST" and
      "server_label" in end["message"], "bad entry: got %r" % end)

# Cancelling the chat while a tool runs cancels the tool call.
nid[0] += 1
c.req(nid[0], "llm", "chat", {
    "model": "openai/gpt-4o-mini", "tools": [MCP],
    "messages": [{"role": "user", "content":
                  'use tool everything__trigger-long-running-operation '
                  '{"duration": 8, "steps": 4}'}]})
time.sleep(1.5)
c.send(t="cancel", id=nid[0])
_, end = c.until_end(nid[0], 10)
check(end["t"] == "error" and end["code"] == "CANCELLED", "got %r" % end)
print("ok")
PY

# Nothing is left in flight once the cancel went through.
for ((i = 0; i < 30; i++)); do
    [ "$(omni_stat services mcp in_flight)" = 0 ] &&
        [ "$(omni_stat services llm in_flight)" = 0 ] && break
    sleep 0.2
done
[ "$(omni_stat services mcp in_flight)" = 0 ] ||
    fail "the cancelled tool call is still in flight at the mcp worker"
[ "$(omni_stat services llm in_flight)" = 0 ] ||
    fail "the cancelled chat is still in flight at the llm worker"
omni_stop || fail "broker did not drain cleanly"
omni_check_log

# Without the mcp service the chat fails UNAVAILABLE, naming mcp.
export OMNI_SERVICES=llm
omni_start_broker
omni_wait_ready || fail "broker not ready (llm only)"
omni_py - <<'PY' || exit 1
from omnitest import Conn, check
c = Conn()
c.req(1, "llm", "chat", {"model": "openai/gpt-4o-mini",
      "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "mcp", "server_label": "everything"}]})
_, end = c.until_end(1, 15)
check(end["t"] == "error" and end["code"] == "UNAVAILABLE" and
      "mcp" in end["message"], "no mcp: got %r" % end)
print("ok no mcp")
PY
omni_stop || fail "broker did not drain cleanly"
omni_check_log
