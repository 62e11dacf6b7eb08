#!/usr/bin/env bash
# t4050 - rag with rag.embedder=provider/model: chunks and queries are
# embedded by the llm service's embeddings op (the provider emulator
# behind it), the collection records that embedder and its dimension,
# and a worker with the local embedder refuses the collection.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed"
export OMNI_SERVICES=llm,rag
omni_setup
start_redis

omni_start_fake
export OPENAI_API_KEY=sk-test
export OMNI_RAG_EMBEDDER=openai/text-embedding-3-small
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"

dim=$("$OMNI_BIN/omni" call llm embeddings '{"model":"openai/text-embedding-3-small","input":"x"}' |
    json_py 'print(len(j["data"][0]["embedding"]))') || fail "llm embeddings failed"

docs=""
for i in $(seq 1 70); do
    docs+="${docs:+,}{\"id\":\"p$i\",\"text\":\"Paragraph $i mentions keyword$i.\"}"
done
out=$(rag ingest "{\"collection\":\"prov\",\"documents\":[$docs]}") ||
    fail "ingest through the provider failed: $out"
echo "$out" | json_py 'assert len(j["ingested"]) == 70 and j["chunks"] == 70, j' ||
    fail "ingest reply: $out"
rag list '{"collection":"prov"}' | json_py 'assert j["embedder"] == "openai/text-embedding-3-small", j
assert j["dim"] == '"$dim"', j' || fail "collection does not record the embedder"
out=$(rag query '{"collection":"prov","query":"keyword42","top_k":3}') ||
    fail "hybrid query failed: $out"
echo "$out" | json_py 'assert j["results"][0]["document_id"] == "p42", j' ||
    fail "hybrid query: $out"
out=$(rag query '{"collection":"prov","query":"keyword7","mode":"vector","top_k":70}') ||
    fail "vector query failed: $out"
echo "$out" | json_py 'assert len(j["results"]) == 70, j' || fail "vector query: $out"
[ "$(redis-cli -u "$OMNI_REDIS_URL" hget 'omni:{rag:prov}:meta' dim)" = "$dim" ] ||
    fail "redis meta dim"
omni_stop || fail "broker exit status $?"

# The same collection under a worker that embeds locally: refused.
export OMNI_RAG_EMBEDDER=local OMNI_SERVICES=rag
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"
for ((i = 0; i < 50; i++)); do
    rag list '{}' 2>/dev/null | grep -q '"prov"' && break
    sleep 0.1
done
out=$(rag ingest '{"collection":"prov","documents":[{"id":"x","text":"local"}]}' 2>&1) &&
    fail "mixed embedders accepted: $out"
[[ "$out" == *"BAD_REQUEST: dimension mismatch: collection 'prov' holds $dim-dimension vectors from embedder 'openai/text-embedding-3-small', this worker embeds with 'local'"* ]] ||
    fail "mismatch message: $out"
out=$(rag query '{"collection":"prov","query":"keyword42","mode":"bm25","top_k":1}') ||
    fail "bm25 query needs no embedder: $out"
echo "$out" | json_py 'assert j["results"][0]["document_id"] == "p42", j' || fail "bm25: $out"
omni_stop || fail "broker exit status $?"
omni_check_log
echo "ok"
