#!/usr/bin/env bash
# t3120-llm-cache: the exact response cache in Redis: a repeated request
# never reaches the upstream, a streamed hit replays the same chunks, the
# per-request opt-out, the keys and their TTL, and chat going on while
# Redis is down and caching again once it is back.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
export OMNI_SERVICES=llm
export OMNI_CACHE_TTL_S=120
omni_setup
start_redis
REDIS_PID=${OMNI_PIDS[-1]}
REDIS_PORT=${OMNI_REDIS_URL##*:}
REDIS_PORT=${REDIS_PORT%%/*}

omni_start_fake
export ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE
export REDIS_PORT

omni_start_broker
omni_wait_ready || fail "broker not ready"
# The worker connects to Redis right after it starts.
sleep 0.5

py() {
    omni_py - "$@" <<'PY'
import json, os, subprocess, sys, time, urllib.request
from omnitest import Conn, body, check

fake = "http://127.0.0.1:%s" % os.environ["FAKE"]
c = Conn()
nid = [0]

def calls():
    return json.load(urllib.request.urlopen(fake + "/_fake/stats"))["calls"]

def chat(text, stream=False, **extra):
    nid[0] += 1
    b = {"model": "openai/gpt-4o-mini",
         "messages": [{"role": "user", "content": text}]}
    b.update(extra)
    if stream:
        b["stream"] = True
    c.req(nid[0], "llm", "chat", b, stream=stream)
    return c.until_end(nid[0], 15)

def redis(*args):
    return subprocess.run(["redis-cli", "-p", os.environ["REDIS_PORT"]]
                          + list(args), capture_output=True,
                          text=True).stdout.strip()

phase = sys.argv[1]
if phase == "up":
    n0 = calls()
    _, a = chat("cache me", temperature=0.7, user="u1")
    _, b = chat("cache me", temperature=0.7, user="u2")  # user ignored
    check(a["t"] == "final" and b["t"] == "final", "got %r %r" % (a, b))
    check(calls() - n0 == 1, "repeat reached the upstream (%d calls)"
          % (calls() - n0))
    check(body(a) == body(b), "hit differs from the original")
    _, d = chat("cache me", temperature=0.2)
    check(calls() - n0 == 2, "another temperature must miss")

    # Streamed: a hit replays the very same chunks.
    n0 = calls()
    c1, e1 = chat("stream me", stream=True)
    c2, e2 = chat("stream me", stream=True)
    check(e1["t"] == "final" and e2["t"] == "final", "got %r %r" % (e1, e2))
    check(calls() - n0 == 1, "streamed repeat reached the upstream")
    check([m["body"] for m in c1] == [m["body"] for m in c2],
          "replayed chunks differ: %d vs %d" % (len(c1), len(c2)))
    check(len(c2) >= 3, "got %d chunks" % len(c2))
    # The unary form of the same request is its own entry.
    _, e3 = chat("stream me")
    check(calls() - n0 == 2 and body(e3)["object"] == "chat.completion",
          "a unary request hit a streamed entry")

    # Opt-out reaches the upstream every time.
    n0 = calls()
    for _ in range(2):
        _, e = chat("cache me", temperature=0.7, omni={"cache": False})
        check(e["t"] == "final", "got %r" % e)
    check(calls() - n0 == 2, "opt-out was served from the cache")

    keys = redis("--scan", "--pattern", "omni:{cache}:*").split()
    check(len(keys) >= 3, "got keys %r" % keys)
    ttl = int(redis("TTL", keys[0]))
    check(0 < ttl <= 120, "got TTL %d" % ttl)
elif phase == "down":
    # Redis is gone: every request is still served, quickly.
    t0 = time.time()
    for k in range(10):
        chunks, e = chat("no redis %d" % k, stream=bool(k % 2))
        check(e["t"] == "final", "redis down: got %r" % e)
    check(time.time() - t0 < 5, "slow without redis: %.1f s"
          % (time.time() - t0))
elif phase == "back":
    # Once Redis is back (reconnect backoff <= 5 s), caching resumes.
    n0 = calls()
    deadline = time.time() + 15
    hit = False
    while time.time() < deadline and not hit:
        _, e = chat("after restart")
        check(e["t"] == "final", "got %r" % e)
        n1 = calls()
        _, e = chat("after restart")
        hit = calls() == n1
        time.sleep(0.5)
    check(hit, "no cache hit after redis came back")
print("ok " + phase)
PY
}

py up || exit 1
{ kill -KILL "$REDIS_PID" && wait "$REDIS_PID"; } 2>/dev/null
py down || exit 1
grep -q 'cache unavailable' "$OMNI_BROKER_LOG" ||
    fail "no warning about the cache being unavailable"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$OMNI_TEST_DIR/redis" \
    >>"$OMNI_TEST_DIR/redis.log" 2>&1 &
omni_track $!
py back || exit 1
omni_stop || fail "broker did not drain cleanly"
