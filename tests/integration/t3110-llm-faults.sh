#!/usr/bin/env bash
# t3110-llm-faults: upstream failures through the llm service: retried
# 429s, 500 and 529 after the retries, a hung upstream, a stream dropped
# or malformed midway, a slow one, a refused connection, and a cancel.
# Every request ends, with a bounded wait.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
export OMNI_SERVICES=llm
export OMNI_LLM_FIRST_BYTE_TIMEOUT_MS=1000
omni_setup

omni_start_fake
export ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE
DEAD=$(free_port)
export OMNI_PROVIDERS="dead=http://127.0.0.1:$DEAD/v1"

omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit 1
import json, os, time, urllib.request
from omnitest import Conn, body, check

fake = "http://127.0.0.1:%s" % os.environ["FAKE"]
c = Conn()
nid = [0]

def calls():
    return json.load(urllib.request.urlopen(fake + "/_fake/stats"))["calls"]

def send(text, model="openai/gpt-4o-mini", stream=False, **kw):
    nid[0] += 1
    b = {"model": model, "messages": [{"role": "user", "content": text}]}
    if model.startswith("anthropic/"):
        b["max_tokens"] = 64
    if stream:
        b["stream"] = True
    c.req(nid[0], "llm", "chat", b, stream=stream, **kw)
    return nid[0]

def chat(text, timeout=15, **kw):
    i = send(text, **kw)
    t0 = time.time()
    chunks, end = c.until_end(i, timeout)
    return chunks, end, time.time() - t0

# 429 twice, then served: three upstream calls.
n0 = calls()
_, end, _ = chat("[fault:429x2] a")
check(end["t"] == "final", "429x2: got %r" % end)
check(calls() - n0 == 3, "429x2: got %d upstream calls, want 3"
      % (calls() - n0))

# 500 every time: UPSTREAM 500 after llm.retries (2) retries.
n0 = calls()
_, end, _ = chat("[fault:500] b")
check(end["t"] == "error" and end["code"] == "UPSTREAM" and
      end["status"] == 500, "500: got %r" % end)
check(end["message"].startswith("openai: "), "500: got %r" % end["message"])
check(calls() - n0 == 3, "500: got %d calls, want 3" % (calls() - n0))

# 429 for good: passed on with the retry hint.
_, end, _ = chat("[fault:429] c")
check(end["code"] == "UPSTREAM" and end["status"] == 429 and
      end.get("retry_after_ms", 0) > 0, "429: got %r" % end)

# 529 on the Anthropic route, streamed or not.
for stream in (False, True):
    _, end, _ = chat("[fault:529] d", model="anthropic/claude-x",
                     stream=stream)
    check(end["code"] == "UPSTREAM" and end["status"] == 529 and
          end["message"].startswith("anthropic: "), "529: got %r" % end)

# A hung upstream: TIMEOUT after the first-byte limit, well within the
# deadline, not retried.
n0 = calls()
_, end, dt = chat("[fault:hang] e", timeout=20, deadline_ms=15000)
check(end["code"] == "TIMEOUT", "hang: got %r" % end)
check(0.9 < dt < 5, "hang: answered after %.1f s" % dt)
check(calls() - n0 == 1, "hang: retried")
# And one bounded by its own deadline.
_, end, dt = chat("[fault:hang] e2", timeout=20, deadline_ms=500)
check(end["code"] == "TIMEOUT" and dt < 3, "hang: got %r after %.1f s"
      % (end, dt))

# A stream dropped midway: the chunks, then an error; never retried.
n0 = calls()
chunks, end, _ = chat("[fault:drop] f g h i j k", stream=True)
check(len(chunks) >= 1 and end["t"] == "error" and
      end["code"] == "UPSTREAM", "drop: got %d chunks, %r"
      % (len(chunks), end))
check(calls() - n0 == 1, "drop: retried after chunks went out")
# Non-streamed, a dropped reply is a connection error: retried, failing.
_, end, _ = chat("[fault:drop] f2")
check(end["code"] == "UPSTREAM" and end["status"] == 502 and
      "connection" in end["message"], "drop unary: got %r" % end)

# Malformed: a clear error, streamed or not.
chunks, end, _ = chat("[fault:malformed] g", stream=True)
check(end["code"] == "UPSTREAM" and "invalid" in end["message"],
      "malformed stream: got %r" % end)
_, end, _ = chat("[fault:malformed] g2")
check(end["code"] == "UPSTREAM" and "malformed" in end["message"],
      "malformed: got %r" % end)

# Slow but steady: served.
chunks, end, _ = chat("[fault:slow=100] h", stream=True)
check(end["t"] == "final" and len(chunks) >= 3, "slow: got %r" % end)

# Nobody listening: UPSTREAM 502 naming the connection failure.
_, end, _ = chat("i", model="dead/m")
check(end["code"] == "UPSTREAM" and end["status"] == 502 and
      end["message"].startswith("dead: cannot connect"),
      "refused: got %r" % end)

# Cancel a slow stream after its first chunk; the link stays usable.
i = send("[fault:slow=300] j k l m", stream=True)
m = c.recv(10)
while m.get("id") != i:
    m = c.recv(10)
check(m["t"] == "chunk", "cancel: got %r first" % m)
c.send(t="cancel", id=i)
_, end = c.until_end(i, 10)
check(end["t"] == "error" and end["code"] == "CANCELLED",
      "cancel: got %r" % end)
_, end, _ = chat("after cancel")
check(end["t"] == "final", "after cancel: got %r" % end)

# Many at once, some failing: every one ends.
ids = [send("[fault:%s] n%d" % (f, k))
       for k in range(20) for f in ("500x1", "slow=50", "429x1")]
done = 0
t0 = time.time()
while done < len(ids):
    m = c.recv(30)
    if m["id"] in ids and m["t"] in ("final", "error"):
        check(m["t"] == "final", "burst: got %r" % m)
        done += 1
print("ok in %.1f s" % (time.time() - t0))
PY
omni_stop || fail "broker did not drain cleanly"
