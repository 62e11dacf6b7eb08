#!/usr/bin/env bash
# t6060-lambda-edges: the runtime's and the extension's edges.  Outside
# Lambda (no AWS_LAMBDA_RUNTIME_API) both refuse to start; /metrics;
# a streamed route over API Gateway whose provider drops mid-stream
# (buffered SSE ending in an error event); an idle shutdown, where
# bootstrap leaves on SIGTERM with status 0 before the SIGKILL; a
# broker that dies under the runtime (errors, not hangs); an invalid
# setting failing init with a ConfigInvalid error; the services picked
# from the workers present when OMNI_SERVICES is not set.
. "$(dirname "$0")/lambda_lib.sh"
export OMNI_SERVICES=echo,llm OMNI_LLM_RETRIES=0
lambda_setup

# Outside Lambda: a clear refusal, a normal exit.
for p in bootstrap omni-extension; do
    out=$(env -u AWS_LAMBDA_RUNTIME_API "$OMNI_BIN/$p" 2>&1) &&
        fail "$p started without AWS_LAMBDA_RUNTIME_API"
    grep -q "AWS_LAMBDA_RUNTIME_API is not set" <<<"$out" ||
        fail "$p: got '$out'"
done

lambda_start_emu --timeout 20
lambda_py - <<'PY' || exit 1
import json, os, time, urllib.request
from lambda_emu import invoke
from omnitest import check

port = int(os.environ["EMU"])

def http_event(method, path, body=None, url=True):
    return {
        "version": "2.0", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "domainName": ("abc.lambda-url.us-east-1.on.aws" if url
                           else "abc.execute-api.us-east-1.amazonaws.com"),
            "http": {"method": method}, "stage": "$default"},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False}

def http(ev):
    r = invoke(port, ev)
    check("x-amz-function-error" not in r["headers"],
          "function error: %r" % r["body"])
    out = json.loads(r["body"])
    return out["statusCode"], out["headers"], out["body"]

# /metrics: Prometheus text with the broker's numbers.
st, h, body = http(http_event("GET", "/metrics"))
check(st == 200 and h["content-type"].startswith("text/plain"),
      "metrics: got %d %r" % (st, h))
check("omni_broker_up 1" in body, "metrics: got %r" % body[:400])

# API Gateway cannot stream: the SSE is buffered, and a provider that
# drops the stream midway ends it with an error event, not a cut.
ev = http_event("POST", "/v1/chat/completions", {
    "model": "openai/gpt-4o-mini", "stream": True,
    "messages": [{"role": "user", "content": "a b c d e f [fault:drop]"}]},
    url=False)
st, h, body = http(ev)
check(st == 200 and h["content-type"] == "text/event-stream",
      "drop: got %d %r" % (st, h))
check(body.count("data: ") >= 2 and '"error"' in body and
      "[DONE]" not in body, "drop: got %r" % body)

# A direct streamed invocation the worker refuses at once: an error
# reply (Function.<Code>), not a stream.
r = invoke(port, {"service": "echo", "op": "stream", "stream": True,
                  "body": {"chunks": -3}})
check(r["headers"].get("x-amz-function-error") == "Unhandled",
      "refused stream: got %r" % r)
j = json.loads(r["body"])
check(j["errorType"] == "Function.BadRequest" and j["status"] == 400,
      "refused stream: got %r" % j)

# Idle shutdown: SIGTERM to bootstrap, which exits 0 on its own (once
# it waits in /next: the reply above reached us before that).
time.sleep(0.3)
req = urllib.request.Request("http://127.0.0.1:%d/_emu/shutdown" % port,
                             data=b"", method="POST")
sd = json.load(urllib.request.urlopen(req, timeout=10))
check(sd["exits"].get("runtime") == 0 and "runtime" not in sd["killed"],
      "runtime at shutdown: %r" % sd)
check(sd["exits"].get("omni") == 0, "extension at shutdown: %r" % sd)
PY
lambda_stop_emu

# The broker dies under a warm environment: the invocation in flight
# and the next one end with errors within seconds.
lambda_start_emu --timeout 10
lambda_py - "$OMNI_TEST_DIR" <<'PY' || exit 1
import json, os, re, signal, sys, threading, time
from lambda_emu import invoke
from omnitest import check

port = int(os.environ["EMU"])
chat = {"model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "warm"}]}
r = invoke(port, {"service": "llm", "op": "chat", "body": chat})
check("x-amz-function-error" not in r["headers"], "warm: %r" % r)
log = open(os.path.join(sys.argv[1], "emu.log")).read()
m = re.findall(r'"msg":"broker (\d+) listening', log)
check(m, "no broker pid in the log")
got = {}
def run():
    got["r"] = invoke(port, {"service": "echo", "op": "sleep",
                             "body": {"ms": 5000}})
th = threading.Thread(target=run)
th.start()
time.sleep(0.5)
t = time.monotonic()
os.kill(int(m[-1]), signal.SIGKILL)
th.join(15)
check("r" in got, "the invocation in flight never ended")
check(time.monotonic() - t < 8, "took %.1f s" % (time.monotonic() - t))
check(got["r"]["headers"].get("x-amz-function-error") == "Unhandled",
      "in flight: got %r" % got["r"])
j = json.loads(got["r"]["body"])
check(j["errorType"] in ("Function.Unavailable", "Extension.Crash",
                         "Runtime.BrokerUnavailable", "Runtime.ExitError"),
      "in flight: got %r" % j)
print("in flight:", j["errorType"])
PY
lambda_stop_emu

# An out-of-range setting: init fails with a ConfigInvalid error naming
# the setting, from whichever process reads it first (the extension
# starts first, but may exit before posting while the runtime does).
check_config() {  # emulator flags..., then the error types accepted
    lambda_py - "$@" <<'PY'
import json, os, sys
from lambda_emu import invoke
from omnitest import check
r = invoke(int(os.environ["EMU"]), {"service": "llm", "op": "models"})
check(r["headers"].get("x-amz-function-error") == "Unhandled", "got %r" % r)
j = json.loads(r["body"])
check(j["errorType"] in sys.argv[1:], "got %r, want %r" % (j, sys.argv[1:]))
check("OMNI_LAMBDA_WAIT_MS" in j["errorMessage"], "got %r" % j)
PY
}
OMNI_LAMBDA_WAIT_MS=5 lambda_start_emu
check_config Extension.ConfigInvalid Runtime.ConfigInvalid || exit 1
lambda_stop_emu
OMNI_LAMBDA_WAIT_MS=5 lambda_start_emu --runtime-first
check_config Runtime.ConfigInvalid Extension.ConfigInvalid || exit 1
lambda_stop_emu

# No OMNI_SERVICES: the extension serves the services whose worker is
# in the layer (here echo and llm; no rag, no mcp).
w=$OMNI_TEST_DIR/opt-small
mkdir -p "$w"
for b in omni-broker omni-echo omni-llm; do
    ln -s "$(cd "$OMNI_BIN" && pwd)/$b" "$w/$b"
done
saved_services=$OMNI_SERVICES
unset OMNI_SERVICES
OMNI_WORKER_DIR=$w lambda_start_emu
export OMNI_SERVICES=$saved_services
lambda_py - <<'PY' || exit 1
import json, os
from lambda_emu import invoke
from omnitest import check
port = int(os.environ["EMU"])
r = invoke(port, {"service": "echo", "op": "echo", "body": {"hi": 7}})
check("x-amz-function-error" not in r["headers"], "echo: got %r" % r)
check(json.loads(r["body"]) == {"hi": 7}, "echo: got %r" % r["body"])
r = invoke(port, {"service": "rag", "op": "search", "body": {}})
j = json.loads(r["body"])
check(j.get("errorType") == "Function.NoService", "rag: got %r" % j)
PY
grep -q "\"services 'echo,llm'\"" "$EMU_LOG" ||
    fail "no services line in the log"
lambda_stop_emu
lambda_check_logs
echo ok
