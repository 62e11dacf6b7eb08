#!/usr/bin/env bash
# t6040-lambda-init: init order and init failures.  A bootstrap started
# before the extension is ready waits for the broker socket and then
# serves; a bootstrap with no extension reports Runtime.ExtensionUnavailable
# to /init/error within lambda.wait_ms; an extension whose broker cannot
# start reports Extension.BrokerFailed; the extension binds the socket
# before it registers, so a normal init never waits in bootstrap.
. "$(dirname "$0")/lambda_lib.sh"
export OMNI_LAMBDA_WAIT_MS=1500
lambda_setup

check_py() {  # expected: ok | errorType
    lambda_py - "$1" <<'PY'
import json, os, sys, time, urllib.request
from lambda_emu import invoke
from omnitest import check
port, want = int(os.environ["EMU"]), sys.argv[1]
ev = {"service": "llm", "op": "chat", "body": {
    "model": "openai/gpt-4o-mini",
    "messages": [{"role": "user", "content": "early"}]}}
t = time.monotonic()
r = invoke(port, ev)
dt = time.monotonic() - t
st = json.load(urllib.request.urlopen("http://127.0.0.1:%d/_emu/state"
                                      % port))
if want == "ok":
    check("x-amz-function-error" not in r["headers"], "got %r" % r)
    check(json.loads(r["body"])["choices"][0]["message"]["content"] ==
          "Echo: early", "got %r" % r["body"])
    i = st["inits"][0]
    if os.environ.get("RUNTIME_FIRST"):
        check(i["rt_spawn"] < i["ext_register"]["omni"],
              "runtime did not start first: %r" % i)
    else:
        check(i["rt_spawn"] >= i["ext_register"]["omni"],
              "runtime started before the extension registered: %r" % i)
else:
    check(r["headers"].get("x-amz-function-error") == "Unhandled",
          "got %r" % r)
    j = json.loads(r["body"])
    check(j["errorType"] == want, "got %r, want %s" % (j, want))
    check(dt < 5, "init failure took %.1f s" % dt)
    print("init error:", j["errorMessage"])
PY
}

# 1. Runtime first: bootstrap starts with the extension and waits.
RUNTIME_FIRST=1 lambda_start_emu --runtime-first
RUNTIME_FIRST=1 check_py ok || exit 1
lambda_stop_emu

# 2. The normal order: the socket is there before the runtime starts.
lambda_start_emu
check_py ok || exit 1
lambda_stop_emu

# 3. No extension at all.
mv "$OMNI_TEST_DIR/opt/extensions/omni" "$OMNI_TEST_DIR/omni.ext"
lambda_start_emu
check_py Runtime.ExtensionUnavailable || exit 1
lambda_stop_emu
mv "$OMNI_TEST_DIR/omni.ext" "$OMNI_TEST_DIR/opt/extensions/omni"

# 4. The broker cannot start (no omni-broker in the worker dir).
mkdir -p "$OMNI_TEST_DIR/empty"
OMNI_WORKER_DIR=$OMNI_TEST_DIR/empty lambda_start_emu
check_py Extension.BrokerFailed || exit 1
lambda_stop_emu

lambda_check_logs
echo ok
