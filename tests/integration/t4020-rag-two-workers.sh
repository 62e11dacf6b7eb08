#!/usr/bin/env bash
# t4020 - rag: two rag workers share collections through Redis; each
# sees what the other ingested or deleted (the change stream).
. "$(dirname "$0")/lib.sh"
export OMNI_SERVICES=rag OMNI_WORKERS_RAG=2
omni_setup
start_redis
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"

# Ingest concurrently so that both workers take some of the writes.
pids=()
for i in $(seq 1 12); do
    rag ingest "{\"collection\":\"shared\",\"documents\":[{\"id\":\"d$i\",\"text\":\"Shared document number $i about subject$i.\"}]}" \
        >"$OMNI_TEST_DIR/ingest$i.out" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "an ingest failed: $(cat "$OMNI_TEST_DIR"/ingest*.out)"
done
writers=$(redis-cli -u "$OMNI_REDIS_URL" xrange 'omni:{rag}:changes' - + |
    grep -A1 '^origin$' | grep -v '^origin$' | grep -v '^--$' | sort -u | wc -l)
[ "$writers" -eq 2 ] || echo "note: $writers worker(s) took the writes"

# Every worker must see all twelve documents: query concurrently until
# both workers have answered, each with the complete set.
seen=()
for ((round = 0; round < 30; round++)); do
    pids=()
    for k in 1 2 3 4; do
        rag list '{"collection":"shared"}' >"$OMNI_TEST_DIR/list$k.out" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    for k in 1 2 3 4; do
        out=$(cat "$OMNI_TEST_DIR/list$k.out")
        w=$(echo "$out" | json_py 'assert len(j["documents"]) == 12, j
print(j["worker"])') || fail "a worker misses documents: $out"
        [[ " ${seen[*]} " == *" $w "* ]] || seen+=("$w")
    done
    [ ${#seen[@]} -ge 2 ] && break
done
[ ${#seen[@]} -ge 2 ] || fail "only worker(s) ${seen[*]} answered"

# A query for one document's words finds it on whichever worker answers.
for ((i = 0; i < 10; i++)); do
    rag query '{"collection":"shared","query":"subject7","mode":"bm25","top_k":1}' |
        json_py 'assert j["results"][0]["document_id"] == "d7", j' ||
        fail "query on a worker did not find d7"
done

# Changes and deletions propagate too.
rag ingest '{"collection":"shared","documents":[{"id":"d7","text":"Replaced text about zebras."}]}' >/dev/null ||
    fail "re-ingest failed"
rag delete '{"collection":"shared","id":"d3"}' >/dev/null || fail "delete failed"
sleep 0.3
seen=()
for ((round = 0; round < 30; round++)); do
    pids=()
    for k in 1 2 3 4; do
        rag query '{"collection":"shared","query":"zebras subject3","mode":"bm25","top_k":20}' \
            >"$OMNI_TEST_DIR/q$k.out" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    for k in 1 2 3 4; do
        out=$(cat "$OMNI_TEST_DIR/q$k.out")
        w=$(echo "$out" | json_py 'ids = [r["document_id"] for r in j["results"]]
assert ids == ["d7"], ids
print(j["worker"])') || fail "stale worker: $out"
        [[ " ${seen[*]} " == *" $w "* ]] || seen+=("$w")
    done
    [ ${#seen[@]} -ge 2 ] && break
done
[ ${#seen[@]} -ge 2 ] || fail "only worker(s) ${seen[*]} answered"
omni_stop || fail "broker exit status $?"
omni_check_log
echo "ok"
