#!/usr/bin/env bash
# t6010-lambda-stream: Lambda response streaming from bootstrap under the
# emulator: Function URL chat with stream true (prelude, 8 NULs, SSE
# chunks arriving one by one, [DONE]); a provider failing mid-stream
# (SSE error event and the error trailers); a failure before the first
# chunk (an HTTP error status in the prelude); a direct streamed
# invocation; a streamed request over API Gateway (buffered SSE).
. "$(dirname "$0")/lambda_lib.sh"
export OMNI_LLM_RETRIES=0
lambda_setup
lambda_start_emu --timeout 20

lambda_py - <<'PY' || exit 1
import json, os
from lambda_emu import invoke, split_prelude, error_body
from omnitest import check

port = int(os.environ["EMU"])

def url_event(body, url=True):
    return {"version": "2.0", "rawPath": "/v1/chat/completions",
            "rawQueryString": "", "headers": {
                "content-type": "application/json"},
            "requestContext": {
                "domainName": ("abc.lambda-url.us-east-1.on.aws" if url
                               else "abc.execute-api.us-east-1.amazonaws.com"),
                "http": {"method": "POST"}, "stage": "$default"},
            "body": json.dumps(body), "isBase64Encoded": False}

def chat(text, stream=True):
    return {"model": "openai/gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": text}]}

def sse_events(text):
    out = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            out.append(block[6:])
    return out

def content(events):
    s = ""
    for e in events:
        if e == "[DONE]":
            continue
        j = json.loads(e)
        if "error" in j:
            continue
        for c in j["choices"]:
            s += c["delta"].get("content") or ""
    return s

# A streamed chat, slow enough that chunks arrive apart.
r = invoke(port, url_event(chat("one two three four [fault:slow=150]")))
check(r["streaming"], "not streamed: %r" % r["headers"])
check(r["headers"]["content-type"] ==
      "application/vnd.awslambda.http-integration-response",
      "content type %r" % r["headers"])
pre, rest = split_prelude(r["body"])
check(pre["statusCode"] == 200, "prelude %r" % pre)
check(pre["headers"]["content-type"] == "text/event-stream",
      "prelude %r" % pre)
ev = sse_events(rest.decode())
check(ev[-1] == "[DONE]", "last event %r" % ev[-1:])
check(content(ev).startswith("Echo: one two three four"),
      "content %r" % content(ev))
check(not r["trailers"].get("Lambda-Runtime-Function-Error-Type"),
      "trailers %r" % r["trailers"])
times = [t for t, c in r["chunks"]]
check(len(times) >= 4, "got %d chunks" % len(times))
check(times[-1] - times[0] >= 0.4,
      "chunks not incremental: %r" % times)

# The provider drops the connection mid-stream.
r = invoke(port, url_event(chat("abc def ghi [fault:drop]")))
pre, rest = split_prelude(r["body"])
check(pre["statusCode"] == 200, "drop prelude %r" % pre)
ev = sse_events(rest.decode())
check(ev and "[DONE]" not in ev, "drop: events %r" % ev)
err = json.loads(ev[-1])
check("error" in err, "drop: last event %r" % ev[-1])
et = r["trailers"].get("Lambda-Runtime-Function-Error-Type", "")
check(et.startswith("Function."), "drop: trailers %r" % r["trailers"])
eb = error_body(r["trailers"])
check(eb and eb["errorType"] == et and eb["errorMessage"],
      "drop: error body %r" % eb)

# Failure before the first chunk: an HTTP error status, no trailers.
r = invoke(port, url_event(chat("x [fault:500]")))
pre, rest = split_prelude(r["body"])
check(pre["statusCode"] >= 500, "500 prelude %r" % pre)
check(pre["headers"]["content-type"] == "application/json",
      "500 prelude %r" % pre)
check("error" in json.loads(rest), "500 body %r" % rest)
check(not r["trailers"].get("Lambda-Runtime-Function-Error-Type"),
      "500: trailers %r" % r["trailers"])
r = invoke(port, url_event({"model": "openai/nonexistent-m",
                            "stream": True, "messages": [
                                {"role": "user", "content": "x"}]}))
pre, rest = split_prelude(r["body"])
check(pre["statusCode"] == 404, "404 prelude %r" % pre)

# Direct streamed invocation: SSE without a prelude.
r = invoke(port, {"service": "llm", "op": "chat", "stream": True,
                  "body": chat("direct stream")})
check(r["streaming"] and r["headers"]["content-type"] ==
      "text/event-stream", "direct: %r" % r["headers"])
ev = sse_events(r["body"].decode())
check(ev[-1] == "[DONE]" and content(ev) == "Echo: direct stream",
      "direct: %r" % ev)
r = invoke(port, {"service": "llm", "op": "chat", "stream": True,
                  "body": {"model": "openai/nonexistent-q",
                           "messages": [{"role": "user", "content": "x"}]}})
check(r["headers"].get("x-amz-function-error") == "Unhandled",
      "direct error: %r" % r)
check(json.loads(r["body"])["errorType"].startswith("Function."),
      "direct error: %r" % r["body"])

# API Gateway HTTP API cannot stream: the SSE comes in one body.
r = invoke(port, url_event(chat("via api gateway"), url=False))
check(not r["streaming"], "apigw streamed")
out = json.loads(r["body"])
check(out["statusCode"] == 200 and out["headers"]["content-type"] ==
      "text/event-stream", "apigw: %r" % out)
ev = sse_events(out["body"])
check(ev[-1] == "[DONE]" and content(ev) == "Echo: via api gateway",
      "apigw: %r" % ev)
PY
lambda_stop_emu
lambda_check_logs
echo ok
