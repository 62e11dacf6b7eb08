#!/usr/bin/env bash
# t6000-lambda-buffered: bootstrap + omni-extension + broker + llm worker
# under the Lambda emulator: buffered chat, embeddings and models through
# Function URL and API Gateway (stage prefix) events, /health, route
# errors, direct invocations, invalid events; the reply reaches the
# caller before the extension finished its INVOKE.
. "$(dirname "$0")/lambda_lib.sh"
lambda_setup
lambda_start_emu --timeout 20

lambda_py - <<'PY' || exit 1
import base64, json, os, sys
from lambda_emu import invoke
from omnitest import check

port = int(os.environ["EMU"])

def http_event(method, path, body=None, url=True, stage="$default",
               headers=None, b64=False):
    h = {"content-type": "application/json"}
    h.update(headers or {})
    raw = json.dumps(body) if body is not None else None
    if b64 and raw is not None:
        raw = base64.b64encode(raw.encode()).decode()
    return {
        "version": "2.0", "routeKey": "$default",
        "rawPath": path if stage == "$default" else "/" + stage + path,
        "rawQueryString": "", "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc",
            "domainName": ("abc.lambda-url.us-east-1.on.aws" if url
                           else "abc.execute-api.us-east-1.amazonaws.com"),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "t"},
            "requestId": "r", "routeKey": "$default", "stage": stage,
            "timeEpoch": 0},
        "body": raw, "isBase64Encoded": b64}

def http(ev):
    r = invoke(port, ev)
    check(r["status"] == 200, "invoke status %r" % r["status"])
    check("x-amz-function-error" not in r["headers"],
          "function error: %r" % r["body"])
    out = json.loads(r["body"])
    return out["statusCode"], out["headers"], out["body"]

chat = {"model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello lambda"}]}

# Buffered chat through a Function URL event (the first invoke: cold).
st, h, body = http(http_event("POST", "/v1/chat/completions", chat))
check(st == 200, "chat: got %d %s" % (st, body))
check(h["content-type"] == "application/json", "chat: got %r" % h)
j = json.loads(body)
check(j["choices"][0]["message"]["content"] == "Echo: hello lambda",
      "chat: got %r" % j)

# API Gateway HTTP API event with a stage prefix and a base64 body.
st, h, body = http(http_event("POST", "/v1/chat/completions", chat,
                              url=False, stage="prod", b64=True))
check(st == 200, "apigw chat: got %d %s" % (st, body))

# Embeddings and models.
st, h, body = http(http_event("POST", "/v1/embeddings",
                              {"model": "openai/text-embedding-3-small",
                               "input": ["a", "b"]}))
check(st == 200, "embeddings: got %d %s" % (st, body))
j = json.loads(body)
check(len(j["data"]) == 2 and len(j["data"][0]["embedding"]) > 0,
      "embeddings: got %r" % j)
st, h, body = http(http_event("GET", "/v1/models"))
check(st == 200 and json.loads(body)["object"] == "list",
      "models: got %d %s" % (st, body))

# Health, and the route table's refusals (same as the HTTP front).
st, h, body = http(http_event("GET", "/health"))
check(st == 200 and json.loads(body)["status"] == "ok",
      "health: got %d %s" % (st, body))
st, h, body = http(http_event("GET", "/v1/nope"))
check(st == 404 and json.loads(body)["error"]["code"] == "not_found",
      "404: got %d %s" % (st, body))
st, h, body = http(http_event("GET", "/v1/chat/completions"))
check(st == 405 and h.get("allow") == "POST", "405: got %d %r" % (st, h))
st, h, body = http(http_event("POST", "/v1/chat/completions",
                              {"model": "openai/nonexistent-x",
                               "messages": chat["messages"]}))
check(st == 404, "unknown model: got %d %s" % (st, body))
ev = http_event("POST", "/v1/chat/completions", chat)
ev["body"] = "{not json"
st, h, body = http(ev)
check(st == 400 and "invalid JSON" in json.loads(body)["error"]["message"],
      "bad json: got %d %s" % (st, body))
ev["body"], ev["isBase64Encoded"] = "***", True
st, h, body = http(ev)
check(st == 400 and "base64" in body, "bad base64: got %d %s" % (st, body))

# Direct invocations.
r = invoke(port, {"service": "llm", "op": "chat", "body": chat})
check("x-amz-function-error" not in r["headers"], "direct: %r" % r)
j = json.loads(r["body"])
check(j["choices"][0]["message"]["content"] == "Echo: hello lambda",
      "direct chat: got %r" % j)
r = invoke(port, {"service": "nosuch", "op": "x", "body": {}})
check(r["headers"].get("x-amz-function-error") == "Unhandled",
      "no service: got %r" % r)
j = json.loads(r["body"])
check(j["errorType"] == "Function.NoService" and j["code"] == "NO_SERVICE"
      and j["status"] == 404, "no service: got %r" % j)
for bad, want in (({"hello": 1}, "invalid event"),
                  ({"service": "llm"}, "'op'"),
                  ({"service": "llm", "op": "chat", "stream": "yes"},
                   "booleans"),
                  ({"httpMethod": "GET", "requestContext": {}}, "1.0")):
    r = invoke(port, bad)
    j = json.loads(r["body"])
    check(j["errorType"] == "Function.InvalidEvent" and want in
          j["errorMessage"], "invalid event %r: got %r" % (bad, j))
r = invoke(port, b"[1,2")
check(json.loads(r["body"])["errorType"] == "Function.InvalidEvent",
      "not json: got %r" % r["body"])

# One environment served everything: one init, no reset.
import urllib.request
st = json.load(urllib.request.urlopen(
    "http://127.0.0.1:%d/_emu/state" % port))
check(len(st["inits"]) == 1, "got %d inits" % len(st["inits"]))
check(not st["shutdowns"], "got shutdowns %r" % st["shutdowns"])
check(st["inits"][0]["error"] is None, "init error %r" % st["inits"][0])
PY

# The provider key never appears in any log.
grep -q "sk-test-lambda-0123456789" "$EMU_LOG" && fail "key in the logs"
lambda_stop_emu
lambda_check_logs
echo ok
