#!/usr/bin/env bash
# t4000 - rag: ingest, query, list, delete; re-ingest of an unchanged
# document is a no-op, a changed one replaces its chunks.  Run twice:
# in memory (no redis_url) and persisted in Redis.
. "$(dirname "$0")/lib.sh"
export OMNI_SERVICES=rag
omni_setup

run_checks() {
    local mode=$1 out
    out=$(rag ingest '{"collection":"kb","documents":[
        {"id":"cats","text":"Cats purr when content. A cat sleeps sixteen hours a day.","metadata":{"kind":"pet","year":2020}},
        {"id":"guide.md","text":"# Rockets\n\nRockets burn fuel to reach orbit.\n\n## Landing\n\nBoosters land on barges.","metadata":{"kind":"space"}},
        {"id":"page.html","content_base64":"'"$(printf '<html><script>evil()</script><h1>Bread</h1><p>Bread is baked from flour &amp; water.</p></html>' | base64 -w0)"'","content_type":"text/html","metadata":{"kind":"food"}}]}') ||
        fail "$mode: ingest failed: $out"
    echo "$out" | json_py 'assert j["ingested"] == ["cats", "guide.md", "page.html"], j
assert j["unchanged"] == [], j
assert j["chunks"] == 4, j' || fail "$mode: ingest reply: $out"

    out=$(rag query '{"collection":"kb","query":"how do boosters land","top_k":3}') ||
        fail "$mode: query failed: $out"
    echo "$out" | json_py 'r = j["results"][0]
assert r["document_id"] == "guide.md" and r["chunk_id"] == 1, r
assert r["heading"] == "Rockets > Landing", r
assert r["text"].startswith("## Landing"), r
assert r["offsets"]["start"] > 0 and r["metadata"] == {"kind": "space"}, r' ||
        fail "$mode: query results: $out"

    for m in bm25 vector; do
        out=$(rag query '{"collection":"kb","query":"flour water baked","mode":"'$m'","top_k":1}') ||
            fail "$mode: $m query failed"
        echo "$out" | json_py 'r = j["results"][0]
assert j["mode"] == "'$m'" and r["document_id"] == "page.html", j
assert "evil" not in r["text"] and "Bread is baked from flour & water." in r["text"], r' ||
            fail "$mode: $m query: $out"
    done

    out=$(rag query '{"collection":"kb","query":"cat sleeps","filter":{"kind":{"$in":["space","food"]}}}') ||
        fail "$mode: filtered query failed"
    echo "$out" | json_py 'assert j["results"] and all(r["document_id"] != "cats" for r in j["results"]), j' ||
        fail "$mode: filter not applied: $out"

    out=$(rag context '{"collection":"kb","query":"cats purr","top_k":2}') ||
        fail "$mode: context failed"
    echo "$out" | json_py 'assert j["context"].startswith("[1] Cats purr"), j
assert j["citations"][0] == {"n": 1, "document_id": "cats", "chunk_id": 0, "score": j["citations"][0]["score"]}, j' ||
        fail "$mode: context: $out"

    # Unchanged: a no-op; changed text: its chunks are replaced.
    out=$(rag ingest '{"collection":"kb","documents":[{"id":"cats","text":"Cats purr when content. A cat sleeps sixteen hours a day.","metadata":{"kind":"pet","year":2020}}]}')
    echo "$out" | json_py 'assert j["ingested"] == [] and j["unchanged"] == ["cats"], j' ||
        fail "$mode: re-ingest not a no-op: $out"
    local hash1 hash2
    hash1=$(rag list '{"collection":"kb"}' | json_py 'print([d["hash"] for d in j["documents"] if d["id"] == "cats"][0])')
    out=$(rag ingest '{"collection":"kb","documents":[{"id":"cats","text":"Tigers are the largest striped cats.","metadata":{"kind":"pet"}}]}')
    echo "$out" | json_py 'assert j["ingested"] == ["cats"], j' || fail "$mode: changed doc: $out"
    hash2=$(rag list '{"collection":"kb"}' | json_py 'print([d["hash"] for d in j["documents"] if d["id"] == "cats"][0])')
    [ "$hash1" != "$hash2" ] || fail "$mode: hash did not change"
    out=$(rag query '{"collection":"kb","query":"sixteen hours","mode":"bm25"}')
    echo "$out" | json_py 'assert j["results"] == [], j' || fail "$mode: old chunks still indexed: $out"
    out=$(rag query '{"collection":"kb","query":"striped tigers","mode":"bm25"}')
    echo "$out" | json_py 'assert j["results"][0]["document_id"] == "cats", j' ||
        fail "$mode: new chunks not indexed: $out"

    out=$(rag list '{"collection":"kb"}')
    echo "$out" | json_py 'd = {x["id"]: x for x in j["documents"]}
assert sorted(d) == ["cats", "guide.md", "page.html"], j
assert d["guide.md"]["chunks"] == 2 and d["guide.md"]["content_type"] == "text/markdown", d
assert d["page.html"]["content_type"] == "text/html" and d["cats"]["bytes"] == 36, d
assert d["cats"]["metadata"] == {"kind": "pet"} and len(d["cats"]["hash"]) == 64, d
assert j["dim"] == 384 and j["embedder"] == "local", j' || fail "$mode: list: $out"
    out=$(rag list '{}')
    echo "$out" | json_py 'assert j["collections"] == [{"name": "kb", "documents": 3, "chunks": 4, "dim": 384, "embedder": "local", "index": "flat"}], j' ||
        fail "$mode: list of collections: $out"

    out=$(rag delete '{"collection":"kb","id":"guide.md"}') || fail "$mode: delete: $out"
    echo "$out" | json_py 'assert j["deleted"] == ["guide.md"], j' || fail "$mode: delete reply: $out"
    out=$(rag query '{"collection":"kb","query":"rockets boosters orbit"}')
    echo "$out" | json_py 'assert all(r["document_id"] != "guide.md" for r in j["results"]), j' ||
        fail "$mode: deleted document still found: $out"
    rag list '{"collection":"kb"}' | json_py 'assert [d["id"] for d in j["documents"]] == ["cats", "page.html"], j' ||
        fail "$mode: deleted document still listed"
}

# In memory.
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"
run_checks memory
omni_stop || fail "broker exit status $?"
omni_check_log

# Persisted in Redis.
start_redis
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"
run_checks redis
keys=$(redis-cli -u "$OMNI_REDIS_URL" --scan --pattern 'omni:{rag:kb}:*' | sort | tr '\n' ' ')
[ "$keys" = "omni:{rag:kb}:chunks:cats omni:{rag:kb}:chunks:page.html omni:{rag:kb}:doc:cats omni:{rag:kb}:doc:page.html omni:{rag:kb}:docs omni:{rag:kb}:meta " ] ||
    fail "redis keys: $keys"
[ "$(redis-cli -u "$OMNI_REDIS_URL" xlen 'omni:{rag}:changes')" -ge 5 ] ||
    fail "no change stream"
omni_stop || fail "broker exit status $?"
omni_check_log
echo "ok"
