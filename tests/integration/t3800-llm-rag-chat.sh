#!/usr/bin/env bash
# t3800-llm-rag-chat: a chat naming a collection ("omni":{"rag":...})
# retrieves context from the rag service, gives it to the model as a
# numbered system message, and answers with omni.citations: the chunks
# whose [n] markers the answer uses (all retrieved ones when it uses
# none), each a real chunk that `rag query` returns too; streamed, the
# citations come in a last extra chunk; an unknown collection is
# NOT_FOUND.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
[ -x "$OMNI_BIN/omni-rag" ] || skip "no $OMNI_BIN/omni-rag"
export OMNI_SERVICES=llm,rag
omni_setup

omni_start_fake

omni_start_broker
omni_wait_ready || fail "broker not ready"

/usr/bin/python3 - >"$OMNI_TEST_DIR/docs.json" <<'PY'
import json
print(json.dumps({"collection": "facts", "documents": [
    {"id": "volcano", "text": "Mount Erebus is the southernmost active "
     "volcano on Earth. It stands on Ross Island in Antarctica and holds "
     "a persistent lava lake in its crater."},
    {"id": "bread", "text": "Sourdough bread rises because wild yeast and "
     "lactic acid bacteria ferment the dough. Bakers keep a starter alive "
     "by feeding it flour and water every day."}]}))
PY
"$OMNI_BIN/omni" call rag ingest "$(cat "$OMNI_TEST_DIR/docs.json")" \
    >"$OMNI_TEST_DIR/ingest.json" ||
    fail "ingest failed: $(cat "$OMNI_TEST_DIR/ingest.json")"

omni_py - <<'PY' || exit 1
import json, os, subprocess, urllib.request
from omnitest import Conn, body, check

fake = "http://127.0.0.1:%s" % os.environ["FAKE"]
omni = os.path.join(os.environ.get("OMNI_BUILD", "build"), "bin", "omni")
c = Conn()
nid = [0]

def chat(text, stream=False, rag=None):
    nid[0] += 1
    b = {"model": "openai/gpt-4o-mini",
         "messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": text}],
         "omni": {"rag": rag or {"collection": "facts", "top_k": 2}}}
    if stream:
        b["stream"] = True
    c.req(nid[0], "llm", "chat", b, stream=stream)
    return c.until_end(nid[0], 20)

def rag_query(q):
    out = subprocess.run([omni, "call", "rag", "query", json.dumps(
        {"collection": "facts", "query": q, "top_k": 2})],
        capture_output=True, text=True, check=True).stdout
    return {(r["document_id"], r["chunk_id"]) for r in
            json.loads(out)["results"]}

Q = "Which volcano holds a lava lake in Antarctica?"
# The emulator echoes the question, so a question ending in [1] makes an
# answer that cites passage 1 only.
_, end = chat(Q + " Cite it as [1].")
check(end["t"] == "final", "got %r" % end)
r = body(end)
text = r["choices"][0]["message"]["content"]
check(text.startswith("Echo: " + Q), "answer: got %r" % text)
cites = r["omni"]["citations"]
check(len(cites) == 1 and cites[0]["n"] == 1, "citations: got %r" % cites)
check(cites[0]["document_id"] == "volcano", "cited %r" % cites[0])
real = rag_query(Q + " Cite it as [1].")
check((cites[0]["document_id"], cites[0]["chunk_id"]) in real,
      "cited chunk %r is not among rag query's %r" % (cites[0], real))

# What the model saw: the numbered context first, then the client's.
up = json.load(urllib.request.urlopen(fake + "/_fake/last"))["body"]
sysmsg = up["messages"][0]
check(sysmsg["role"] == "system" and "[1] Mount Erebus" in sysmsg["content"]
      and "[2] " in sysmsg["content"], "context message: got %r" % sysmsg)
check([m["role"] for m in up["messages"]] == ["system", "system", "user"],
      "messages: got %r" % [m["role"] for m in up["messages"]])
check("omni" not in up, "the upstream got the omni object")

# No marker in the answer: every retrieved chunk is cited.
_, end = chat(Q)
cites = body(end)["omni"]["citations"]
check([x["n"] for x in cites] == [1, 2], "citations: got %r" % cites)
real = rag_query(Q)
check({(x["document_id"], x["chunk_id"]) for x in cites} == real,
      "citations %r differ from rag query's %r" % (cites, real))

# Streamed: the citations ride on a last chunk with no choices.
chunks, end = chat(Q + " See [2].", stream=True)
check(end["t"] == "final", "stream: got %r" % end)
js = [body(m) for m in chunks]
text = "".join(ch["delta"].get("content") or ""
               for j in js for ch in j["choices"])
check(text.startswith("Echo: " + Q), "stream answer: got %r" % text)
check(js[-1]["choices"] == [] and
      [x["n"] for x in js[-1]["omni"]["citations"]] == [2],
      "last chunk: got %r" % js[-1])
check(len({j["id"] for j in js}) == 1, "chunks under several ids")
check(sum(1 for j in js for ch in j["choices"] if ch.get("finish_reason"))
      == 1, "finish_reason count")

# Errors: an unknown collection is NOT_FOUND; a bad rag object.
_, end = chat(Q, rag={"collection": "no_such_collection"})
check(end["t"] == "error" and end["code"] == "NOT_FOUND" and
      "no_such_collection" in end["message"], "got %r" % end)
_, end = chat(Q, rag={"top_k": 2})
check(end["t"] == "error" and end["code"] == "BAD_REQUEST" and
      "omni.rag.collection" in end["message"], "got %r" % end)
print("ok")
PY
omni_stop || fail "broker did not drain cleanly"
omni_check_log
