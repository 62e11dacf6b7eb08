#!/usr/bin/env bash
# t3900-llm-semantic-cache: "omni":{"semantic_cache":true} answers a
# question asked before, or one close to it, from the rag service's
# semantic cache without reaching the provider (the emulator's call
# counter stays put), replaying it as chunks for a streamed request;
# an unrelated question, another system prompt or another model reach
# the provider; without the opt-in nothing is cached; with the rag
# service gone chat goes on and says so in the log.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
[ -x "$OMNI_BIN/omni-rag" ] || skip "no $OMNI_BIN/omni-rag"
export OMNI_SERVICES=llm,rag
omni_setup

omni_start_fake

omni_start_broker
omni_wait_ready || fail "broker not ready"

py() {
    omni_py - "$@" <<'PY'
import json, os, sys, time, urllib.request
from omnitest import Conn, body, check

fake = "http://127.0.0.1:%s" % os.environ["FAKE"]
c = Conn()
nid = [0]

def calls():
    return json.load(urllib.request.urlopen(fake + "/_fake/stats"))["calls"]

def chat(text, stream=False, system="You answer geography questions.",
         model="openai/gpt-4o-mini", sem=True, usage=False, **omni):
    nid[0] += 1
    b = {"model": model,
         "messages": [{"role": "system", "content": system},
                      {"role": "user", "content": text}]}
    if usage:
        b["stream_options"] = {"include_usage": True}
    if sem:
        b["omni"] = dict(semantic_cache=True, **omni)
    if stream:
        b["stream"] = True
    c.req(nid[0], "llm", "chat", b, stream=stream)
    chunks, end = c.until_end(nid[0], 20)
    check(end["t"] == "final", "%r: got %r" % (text, end))
    if not stream:
        return body(end)
    js = [body(m) for m in chunks]
    text = "".join(ch["delta"].get("content") or ""
                   for j in js for ch in j["choices"])
    fin = [ch["finish_reason"] for j in js for ch in j["choices"]
           if ch.get("finish_reason")]
    return {"text": text, "finish": fin, "chunks": js}

def content(r):
    return r["choices"][0]["message"]["content"]

def served(text, want_upstream, **kw):
    """Ask; check whether the provider was reached; return the reply."""
    n0 = calls()
    r = chat(text, **kw)
    got = calls() - n0
    check(got == want_upstream, "%r: %d upstream calls, want %d"
          % (text, got, want_upstream))
    return r

if sys.argv[1] == "up":
    Q = "What is the capital city of France?"
    first = served(Q, 1)
    check(content(first) == "Echo: " + Q, "got %r" % content(first))
    check("semantic_cache" not in first.get("omni", {}),
          "a miss says it was a hit: %r" % first)
    # The store is fire and forget: give it a moment.
    deadline = time.time() + 5
    while True:
        n0 = calls()
        again = chat(Q)
        if calls() == n0 or time.time() > deadline:
            break
        time.sleep(0.2)
    check(calls() == n0, "the same question reached the provider again")
    check(content(again) == content(first), "hit: got %r" % content(again))
    sc = again["omni"]["semantic_cache"]
    check(sc["hit"] is True and sc["score"] >= 0.9, "got %r" % sc)

    # A near-paraphrase is close enough (the rag service's local
    # embedder scores this one about 0.999).
    P = "Which city is the capital of France?"
    para = served(P, 0)
    check(content(para) == content(first), "paraphrase: got %r" % para)
    check(0.9 <= para["omni"]["semantic_cache"]["score"] < 1,
          "paraphrase score: got %r" % para["omni"])

    # Streamed hit: replayed as chunks ending in a finish and the omni
    # chunk.
    s = served(Q, 0, stream=True, usage=True)
    check(s["text"] == content(first), "stream hit: got %r" % s["text"])
    check(s["finish"] == ["stop"], "stream hit finish: %r" % s["finish"])
    check(s["chunks"][-1]["omni"]["semantic_cache"]["hit"] is True,
          "stream hit: last chunk %r" % s["chunks"][-1])
    check(any(j.get("usage") for j in s["chunks"]), "no usage chunk")

    # Unrelated questions, another system prompt, another model, and no
    # opt-in all reach the provider.
    served("How do sourdough starters stay alive?", 1)
    served("What is the capital city of Germany?", 1)
    served(Q, 1, system="You answer in French.")
    served(Q, 1, model="openai/gpt-4o")
    served(Q, 1, sem=False)
    # A threshold above the paraphrase's score misses.
    served(P, 1, semantic_threshold=0.99999)

    # A streamed miss is stored too, and serves a later unary request.
    S = "Name the largest ocean on Earth."
    s = served(S, 1, stream=True)
    check(s["text"] == "Echo: " + S, "stream miss: got %r" % s["text"])
    deadline = time.time() + 5
    while True:
        n0 = calls()
        r = chat(S)
        if calls() == n0 or time.time() > deadline:
            break
        time.sleep(0.2)
    check(calls() == n0, "the streamed answer was not stored")
    check(content(r) == s["text"], "got %r" % content(r))

    # Bad options.
    nid[0] += 1
    c.req(nid[0], "llm", "chat", {"model": "openai/gpt-4o-mini",
          "messages": [{"role": "user", "content": Q}],
          "omni": {"semantic_cache": True, "semantic_threshold": 2}})
    _, end = c.until_end(nid[0], 10)
    check(end["t"] == "error" and end["code"] == "BAD_REQUEST" and
          "semantic_threshold" in end["message"], "got %r" % end)
else:
    # rag is gone: served by the provider, quickly.
    t0 = time.time()
    for k in range(3):
        served("What is the capital city of France?", 1,
               stream=bool(k % 2))
    check(time.time() - t0 < 10, "slow without rag: %.1f s"
          % (time.time() - t0))
print("ok " + sys.argv[1])
PY
}

py up || exit 1
omni_stop || fail "broker did not drain cleanly"
omni_check_log

# The llm service alone: the semantic cache is skipped, with a warning.
export OMNI_SERVICES=llm
omni_start_broker
omni_wait_ready || fail "broker not ready (llm only)"
py down || exit 1
grep -q 'semantic cache unavailable' "$OMNI_BROKER_LOG" ||
    fail "no warning about the semantic cache being unavailable"
omni_stop || fail "broker did not drain cleanly"
omni_check_log
