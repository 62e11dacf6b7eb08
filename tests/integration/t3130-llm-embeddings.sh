#!/usr/bin/env bash
# t3130-llm-embeddings: embeddings as floats and as base64 (the same
# vectors), a provider without embeddings, and the merged model list
# (a provider that cannot be reached is left out).
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
export OMNI_SERVICES=llm
omni_setup

omni_start_fake
export ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE
export OMNI_PROVIDERS="dead=http://127.0.0.1:$(free_port)/v1"

omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit 1
import base64, struct
from omnitest import Conn, body, check

c = Conn()
nid = [0]

def call(op, b):
    nid[0] += 1
    c.req(nid[0], "llm", op, b)
    return c.until_end(nid[0], 15)[1]

req = {"model": "openai/text-embedding-3-small",
       "input": ["first text", "second text"]}
e = call("embeddings", req)
check(e["t"] == "final", "float: got %r" % e)
f = body(e)
check(f["object"] == "list" and len(f["data"]) == 2, "got %r" % f)
vec = f["data"][0]["embedding"]
check(isinstance(vec, list) and len(vec) > 0 and
      all(isinstance(x, float) for x in vec), "got %r" % vec)

req["encoding_format"] = "base64"
e = call("embeddings", req)
check(e["t"] == "final", "base64: got %r" % e)
b = body(e)
s = b["data"][0]["embedding"]
check(isinstance(s, str), "base64: got %r" % s)
raw = base64.b64decode(s)
got = struct.unpack("<%df" % (len(raw) // 4), raw)
check(len(got) == len(vec) and
      all(abs(x - y) < 1e-6 for x, y in zip(got, vec)),
      "base64 vector differs from the float one")

e = call("embeddings", {"model": "anthropic/claude-x", "input": "x"})
check(e["t"] == "error" and e["code"] == "UNSUPPORTED" and
      "anthropic" in e["message"], "anthropic embeddings: got %r" % e)
e = call("embeddings", {"model": "nope/x", "input": "x"})
check(e["t"] == "error" and e["code"] == "NOT_FOUND", "got %r" % e)

e = call("models", {})
check(e["t"] == "final", "models: got %r" % e)
m = body(e)
ids = [x["id"] for x in m["data"]]
check(m["object"] == "list", "got %r" % m)
check(any(i.startswith("openai/") for i in ids) and
      any(i.startswith("anthropic/") for i in ids), "got ids %r" % ids)
check(not any(i.startswith("dead/") for i in ids), "got ids %r" % ids)
check(all(x["object"] == "model" and x["owned_by"] for x in m["data"]),
      "got %r" % m["data"])
print("ok")
PY
grep -q "models: provider 'dead' failed" "$OMNI_BROKER_LOG" ||
    fail "the failed provider was not logged"
omni_stop || fail "broker did not drain cleanly"
