#!/usr/bin/env bash
# t6030-lambda-shutdown: SHUTDOWN with requests in flight.  A broker
# client has a slow stream and a hung request open, and a streamed
# invocation is running, when the environment shuts down: the runtime
# is stopped, the extension drains the broker (every request gets its
# final or an error, none is cut silently) and exits 0 within its
# 1.5 s budget; no process of the environment is left.
. "$(dirname "$0")/lambda_lib.sh"
export OMNI_SERVICES=echo,llm OMNI_LLM_RETRIES=0
lambda_setup
lambda_start_emu --timeout 30

lambda_py - <<'PY' || exit 1
import json, os, threading, time, urllib.request
from lambda_emu import invoke
from omnitest import Conn, check

port = int(os.environ["EMU"])

def post(path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=b"", method="POST")
    return json.load(urllib.request.urlopen(req, timeout=10))

ev = {"version": "2.0", "rawPath": "/v1/chat/completions",
      "rawQueryString": "", "headers": {},
      "requestContext": {"domainName": "x.lambda-url.us-east-1.on.aws",
                         "http": {"method": "POST"}},
      "body": json.dumps({"model": "openai/gpt-4o-mini", "stream": True,
                          "messages": [{"role": "user", "content":
                                        "a b c d e f g h [fault:slow=200]"}]})}
got = {}
first = threading.Event()
def run():
    got["r"] = invoke(port, ev, on_chunk=lambda c: first.set())
th = threading.Thread(target=run)
th.start()
check(first.wait(10), "no first chunk")

# Requests straight to the broker, in flight at SHUTDOWN.
c = Conn()
c.req(1, "echo", "stream", {"chunks": 5, "size": 8, "interval_ms": 100},
      stream=True)
c.req(2, "llm", "chat", {"model": "openai/gpt-4o-mini", "messages": [
    {"role": "user", "content": "z [fault:hang]"}]})
time.sleep(0.1)
t = time.monotonic()
sd = post("/_emu/shutdown")
dt = time.monotonic() - t
check(sd["exits"].get("omni") == 0, "extension exit: %r" % sd)
check("omni" not in sd["killed"], "extension killed: %r" % sd)
check(sd["duration_ms"] <= 1800, "shutdown took %d ms" % sd["duration_ms"])

# Every broker request ended with a final or an error.
ends = {}
while len(ends) < 2:
    m = c.recv(5)
    check(m is not None, "connection closed before every end: %r" % ends)
    if m["t"] in ("final", "error"):
        ends[m["id"]] = m
check(ends[1]["t"] == "final", "echo stream: %r" % ends[1])
check(ends[2]["t"] == "error", "hung chat: %r" % ends[2])
th.join(10)
check("r" in got, "streamed invocation never ended")
PY

# Nothing of the environment is left running: every pid the logs name.
sleep 0.2
pids=$(grep -o '"pid":[0-9]*' "$EMU_LOG" | sort -u | cut -d: -f2)
[ -n "$pids" ] || fail "no pids in the log"
for p in $pids; do
    kill -0 "$p" 2>/dev/null && fail "pid $p ($(cat /proc/$p/comm)) still running"
done
grep -q '"shutdown done in' "$EMU_LOG" || fail "no shutdown line in the log"
lambda_stop_emu
lambda_check_logs
echo ok
