#!/usr/bin/env bash
# t3100-llm-chat: the llm service against the provider emulator, through
# the OpenAI route and the Anthropic route, streamed and not; routing
# errors; what reaches the upstream (its own model id, no Omni fields).
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
export OMNI_SERVICES=llm
omni_setup

omni_start_fake
export ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE

omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit 1
import json, os, urllib.request
from omnitest import Conn, body, check

fake = "http://127.0.0.1:%s" % os.environ["FAKE"]
c = Conn()
msgs = [{"role": "user", "content": "hello there"}]
nid = [0]

def call(op, b, stream=False, timeout=15):
    nid[0] += 1
    kw = {"stream": True} if stream else {}
    c.req(nid[0], "llm", op, b, **kw)
    return c.until_end(nid[0], timeout)

for model, extra in (("openai/gpt-4o-mini", {}),
                     ("anthropic/claude-sonnet-4-5", {"max_tokens": 64})):
    req = dict(model=model, messages=msgs, **extra)
    chunks, end = call("chat", req)
    check(end["t"] == "final", "%s: got %r, want final" % (model, end))
    r = body(end)
    check(r["object"] == "chat.completion", "%s: got %r" % (model, r))
    text = r["choices"][0]["message"]["content"]
    check(text == "Echo: hello there", "%s: got text %r" % (model, text))
    check(not chunks, "%s: chunks for a non-streamed request" % model)

    req["stream"] = True
    chunks, end = call("chat", req, stream=True)
    check(end["t"] == "final", "%s stream: got %r" % (model, end))
    check(end.get("body", b"") in (b"", ""), "%s: final not empty" % model)
    check(len(chunks) >= 3, "%s: got %d chunks" % (model, len(chunks)))
    check([m["seq"] for m in chunks] == list(range(len(chunks))),
          "%s: chunk seq out of order" % model)
    text = ""
    for m in chunks:
        j = body(m)
        check(j["object"] == "chat.completion.chunk", "got %r" % j)
        for ch in j["choices"]:
            text += ch["delta"].get("content") or ""
    check(text == "Echo: hello there", "%s stream: got %r" % (model, text))

    # "stream": true in the body but the request does not stream: one
    # chat.completion.
    chunks, end = call("chat", req)
    check(end["t"] == "final" and not chunks, "got %r" % end)
    check(body(end)["object"] == "chat.completion", "got %r" % body(end))

# include_usage: the last chunk carries usage and no choices.
req = dict(model="openai/gpt-4o-mini", messages=msgs, stream=True,
           stream_options={"include_usage": True})
chunks, end = call("chat", req, stream=True)
last = body(chunks[-1])
check(last["choices"] == [] and last["usage"]["total_tokens"] > 0,
      "got last chunk %r" % last)
req.pop("stream_options")
chunks, end = call("chat", req, stream=True)
check(all("usage" not in body(m) or body(m)["choices"] for m in chunks),
      "usage chunk sent without include_usage")

# What the upstream saw: its model id, no "omni" object.
call("chat", dict(model="openai/gpt-4o-mini", messages=msgs,
                  omni={"cache": False}, user="u1"))
last = json.load(urllib.request.urlopen(fake + "/_fake/last"))["body"]
check(last["model"] == "gpt-4o-mini", "upstream got model %r" % last["model"])
check("omni" not in last, "upstream got the omni object")
check("stream" not in last, "upstream got stream for a unary call")

# Errors name what is wrong.
cases = [
    ({"model": "nope/x", "messages": msgs}, "NOT_FOUND", "'nope/x'"),
    ({"model": "gpt-4o", "messages": msgs}, "BAD_REQUEST", "'gpt-4o'"),
    ({"messages": msgs}, "BAD_REQUEST", "model"),
    ({"model": 7, "messages": msgs}, "BAD_REQUEST", "model"),
    ("{not json", "BAD_REQUEST", "body"),
    ({"model": "openai/gpt-4o-mini"}, "BAD_REQUEST", "messages"),
]
for b, code, has in cases:
    _, end = call("chat", b)
    check(end["t"] == "error" and end["code"] == code and has in end["message"],
          "body %r: got %r, want %s naming %s" % (b, end, code, has))
_, end = call("nope", {})
check(end["t"] == "error" and end["code"] == "UNSUPPORTED", "got %r" % end)
print("ok")
PY
omni_stop || fail "broker did not drain cleanly"
