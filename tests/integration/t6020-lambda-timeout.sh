#!/usr/bin/env bash
# t6020-lambda-timeout: deadlines under the emulator.  The invocation's
# absolute deadline reaches the broker as the request's timeout, so a
# hung provider gives a 504 reply (buffered) or a Function.Timeout
# trailer (streamed) before Lambda's own deadline, and the environment
# lives on.  A deadline already past when the event arrives is Lambda's
# Sandbox.Timedout: the environment resets (SHUTDOWN reason timeout to
# the extension, which exits in time) and the next invoke starts cold.
. "$(dirname "$0")/lambda_lib.sh"
export OMNI_LLM_RETRIES=0
lambda_setup
lambda_start_emu --timeout 20

lambda_py - <<'PY' || exit 1
import json, os, time, urllib.request
from lambda_emu import invoke, split_prelude, error_body
from omnitest import check

port = int(os.environ["EMU"])

def state():
    return json.load(urllib.request.urlopen(
        "http://127.0.0.1:%d/_emu/state" % port))

def ev(text, stream=False):
    return {"version": "2.0", "rawPath": "/v1/chat/completions",
            "rawQueryString": "", "headers": {},
            "requestContext": {"domainName": "x.lambda-url.us-east-1.on.aws",
                               "http": {"method": "POST"}},
            "body": json.dumps({"model": "openai/gpt-4o-mini",
                                "stream": stream, "messages": [
                                    {"role": "user", "content": text}]})}

# Warm up (cold start outside the timed part).
r = invoke(port, ev("warm"))
check(json.loads(r["body"])["statusCode"] == 200, "warm: %r" % r["body"])

# Buffered, provider hangs, function timeout 2 s.
t = time.monotonic()
r = invoke(port, ev("x [fault:hang]"), headers={"X-Emu-Timeout-Ms": "2000"})
dt = time.monotonic() - t
check("x-amz-function-error" not in r["headers"], "hang: %r" % r)
out = json.loads(r["body"])
check(out["statusCode"] == 504, "hang: got %r" % out)
check(json.loads(out["body"])["error"]["code"] == "timeout",
      "hang: body %r" % out["body"])
check(1.5 <= dt < 2.0, "hang: answered after %.2f s" % dt)

# Streamed, chunks slower than the deadline allows.
t = time.monotonic()
r = invoke(port, ev("a b c d e f g h i j k l [fault:slow=300]", True),
           headers={"X-Emu-Timeout-Ms": "1500"})
dt = time.monotonic() - t
pre, rest = split_prelude(r["body"])
check(pre["statusCode"] == 200 and rest.count(b"data: ") >= 2,
      "slow stream: %r" % r["body"][:300])
check(r["trailers"].get("Lambda-Runtime-Function-Error-Type") ==
      "Function.Timeout", "slow stream: trailers %r" % r["trailers"])
check(error_body(r["trailers"])["code"] == "TIMEOUT",
      "slow stream: %r" % error_body(r["trailers"]))
check(dt < 1.5, "slow stream: ended after %.2f s" % dt)

s = state()
check(len(s["inits"]) == 1 and not s["shutdowns"],
      "reset after in-time replies: %r" % s["shutdowns"])

# A deadline already gone (0 ms: however fast the runtime answers, it
# is late): Lambda's own timeout and a reset.
r = invoke(port, ev("y [fault:hang]"), headers={"X-Emu-Timeout-Ms": "0"})
check(r["headers"].get("x-amz-function-error") == "Unhandled",
      "sandbox timeout: %r" % r)
check(json.loads(r["body"])["errorType"] == "Sandbox.Timedout",
      "sandbox timeout: %r" % r["body"])
for _ in range(50):
    s = state()
    if s["shutdowns"] and "duration_ms" in s["shutdowns"][-1]:
        break
    time.sleep(0.1)
sd = s["shutdowns"][-1]
check(sd["reason"] == "timeout", "shutdown %r" % sd)
check(sd["exits"].get("omni") == 0 and "omni" not in sd["killed"],
      "extension did not exit cleanly: %r" % sd)
check(sd["duration_ms"] < 2000, "shutdown took %r ms" % sd["duration_ms"])

# The next invoke starts a new environment and works.
r = invoke(port, ev("again"))
check(json.loads(r["body"])["statusCode"] == 200, "after reset: %r" % r)
check(len(state()["inits"]) == 2, "want 2 inits")
PY
lambda_stop_emu
lambda_check_logs
echo ok
