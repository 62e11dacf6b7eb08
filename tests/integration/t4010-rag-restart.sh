#!/usr/bin/env bash
# t4010 - rag: after kill -9 of the rag worker, the worker the broker
# starts again loads the collections from Redis and answers the same
# queries with the same results.
. "$(dirname "$0")/lib.sh"
export OMNI_SERVICES=rag
omni_setup
start_redis
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"

docs=""
for i in $(seq 1 40); do
    docs+="${docs:+,}{\"id\":\"doc$i\",\"text\":\"Document $i tells of topic$((i % 7)) and item$i. It continues with more words about topic$((i % 5)) over several sentences so that it is long enough.\",\"metadata\":{\"group\":$((i % 3))}}"
done
rag ingest "{\"collection\":\"persist\",\"documents\":[$docs]}" >/dev/null ||
    fail "ingest failed"
rag ingest '{"collection":"other","documents":[{"id":"x","text":"# Title\n\nSome other text."}]}' >/dev/null ||
    fail "ingest 2 failed"

queries=('{"collection":"persist","query":"topic3 item17","top_k":5}'
    '{"collection":"persist","query":"topic4","top_k":8,"mode":"bm25"}'
    '{"collection":"persist","query":"item22 sentences","top_k":5,"mode":"vector"}'
    '{"collection":"persist","query":"topic1","top_k":5,"filter":{"group":2}}'
    '{"collection":"other","query":"other text","top_k":1}')
strip() { json_py 'print(json.dumps([(r["document_id"], r["chunk_id"], round(r["score"], 5)) for r in j["results"]]))'; }
before=()
for q in "${queries[@]}"; do
    before+=("$(rag query "$q" | strip)") || fail "query failed: $q"
done
list_before=$(rag list '{"collection":"persist"}' | json_py 'print(json.dumps(j["documents"], sort_keys=True))')

old=$(rag list '{"collection":"persist"}' | json_py 'print(j["worker"])')
kill -9 "$old" || fail "cannot kill rag worker $old"

# The broker restarts it; it loads from Redis, then answers.
new=
for ((i = 0; i < 100; i++)); do
    if out=$(rag list '{"collection":"persist"}' 2>/dev/null); then
        new=$(echo "$out" | json_py 'print(j["worker"])')
        [ "$new" != "$old" ] && break
    fi
    sleep 0.1
done
[ -n "$new" ] && [ "$new" != "$old" ] || fail "no new rag worker answered"

list_after=$(rag list '{"collection":"persist"}' | json_py 'print(json.dumps(j["documents"], sort_keys=True))')
[ "$list_before" = "$list_after" ] || fail "documents differ after restart"
for i in "${!queries[@]}"; do
    after=$(rag query "${queries[$i]}" | strip) || fail "query failed after restart"
    [ "${before[$i]}" = "$after" ] ||
        fail "query $i differs after restart: before ${before[$i]} after $after"
    [ "$after" != "[]" ] || fail "query $i found nothing"
done
grep -q '"redis: loaded 2 collections, 41 chunks"' "$OMNI_BROKER_LOG" ||
    fail "restarted worker did not log its load"
omni_stop || fail "broker exit status $?"
omni_check_log
echo "ok"
