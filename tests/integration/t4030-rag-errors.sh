#!/usr/bin/env bash
# t4030 - rag: every refusal is a clear error with the right code, and a
# refused ingest writes nothing: empty and binary documents, unknown
# collections, oversized documents, dimension mismatch, Redis refusing
# the transaction (out of memory) and Redis down.
. "$(dirname "$0")/lib.sh"
export OMNI_SERVICES=rag OMNI_RAG_MAX_DOC_BYTES=2000
omni_setup
start_redis
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"

rcli() { redis-cli -u "$OMNI_REDIS_URL" "$@"; }
# expect CODE TEXT OP BODY: the call fails with CODE and a message
# containing TEXT.
expect() {
    local out
    if out=$(rag "$3" "$4" 2>&1); then
        fail "$3 $4: want $1, got success: $out"
    fi
    [[ "$out" == *"$1: "* ]] || fail "$3: want code $1, got: $out"
    [[ "$out" == *"$2"* ]] || fail "$3: want '$2' in: $out"
}

rag ingest '{"collection":"c1","documents":[{"id":"ok","text":"Some valid text."}]}' >/dev/null ||
    fail "first ingest failed"
snapshot() { rcli --scan --pattern 'omni:*' | sort | while read -r k; do
    echo "$k $(rcli type "$k") $(rcli debug digest-value "$k" 2>/dev/null)"
done; }
before=$(snapshot)

expect BAD_REQUEST "document 'e' is empty" ingest \
    '{"collection":"c1","documents":[{"id":"e","text":""}]}'
expect BAD_REQUEST "binary, not UTF-8" ingest \
    '{"collection":"c1","documents":[{"id":"bin","content_base64":"'"$(head -c 300 /dev/urandom | base64 -w0)"'","content_type":"text/plain"}]}'
expect BAD_REQUEST "binary, not UTF-8 text (NUL" ingest \
    '{"collection":"c1","documents":[{"id":"nul","text":"abc\u0000def"}]}'
big=$(head -c 3000 /dev/zero | tr '\0' 'a')
expect TOO_LARGE "too large" ingest \
    '{"collection":"c1","documents":[{"id":"big","text":"'"$big"'"}]}'
# One bad document fails the whole request: the good one is not kept.
expect BAD_REQUEST "document 'e2' has no text" ingest \
    '{"collection":"c1","documents":[{"id":"good","text":"fine"},{"id":"e2","text":"  "}]}'
expect BAD_REQUEST "unsupported content type" ingest \
    '{"collection":"c1","documents":[{"id":"img","content_base64":"AAAA","content_type":"image/png"}]}'
expect BAD_REQUEST "bad 'collection'" ingest \
    '{"collection":"no spaces","documents":[{"id":"x","text":"y"}]}'
expect BAD_REQUEST "bad 'documents'" ingest '{"collection":"c1","documents":[]}'
expect BAD_REQUEST "not valid JSON" ingest '{"collection":'
expect NOT_FOUND "collection 'nope' not found" query '{"collection":"nope","query":"x"}'
expect NOT_FOUND "collection 'nope' not found" list '{"collection":"nope"}'
expect NOT_FOUND "collection 'nope' not found" delete '{"collection":"nope","id":"x"}'
expect NOT_FOUND "document 'missing' not found" delete '{"collection":"c1","id":"missing"}'
expect BAD_REQUEST "bad 'mode'" query '{"collection":"c1","query":"x","mode":"fuzzy"}'
expect BAD_REQUEST "bad 'top_k'" query '{"collection":"c1","query":"x","top_k":0}'
expect BAD_REQUEST "unknown operator" query '{"collection":"c1","query":"x","filter":{"a":{"$gt":1}}}'
expect BAD_REQUEST "bad 'query'" query '{"collection":"c1","query":""}'
expect UNSUPPORTED "no operation 'frobnicate'" frobnicate '{}'
[ "$(snapshot)" = "$before" ] || fail "a refused ingest changed Redis"
rag list '{"collection":"c1"}' | grep -q '"id":"good"' && fail "partial ingest kept"

# Redis refuses the transaction (out of memory): nothing is written.
rcli config set maxmemory 1 >/dev/null
expect UNAVAILABLE "redis refused the write" ingest \
    '{"collection":"c1","documents":[{"id":"oom","text":"Text that cannot be stored."}]}'
rcli config set maxmemory 0 >/dev/null
[ "$(snapshot)" = "$before" ] || fail "a failed transaction changed Redis"
out=$(rag query '{"collection":"c1","query":"cannot be stored","mode":"bm25"}')
[[ "$out" == *'"results":[]'* ]] || fail "failed ingest reached the index: $out"

# Redis down: ingest and delete refused, queries still answered.
port=${OMNI_REDIS_URL##*:}
port=${port%/*}
rcli shutdown nosave >/dev/null 2>&1
for ((i = 0; i < 50; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    sleep 0.1
done
sleep 0.5
expect UNAVAILABLE "nothing written" ingest \
    '{"collection":"c1","documents":[{"id":"down","text":"Redis is down now."}]}'
expect UNAVAILABLE "delete refused" delete '{"collection":"c1","id":"ok"}'
out=$(rag query '{"collection":"c1","query":"valid text"}') ||
    fail "query failed while redis is down: $out"
[[ "$out" == *'"document_id":"ok"'* ]] || fail "query while redis down: $out"

# Redis back (empty: it kept nothing): the worker reconnects, reloads
# Redis's state and takes writes again.
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$OMNI_TEST_DIR/redis" >>"$OMNI_TEST_DIR/redis.log" 2>&1 &
omni_track $!
for ((i = 0; i < 100; i++)); do
    rag ingest '{"collection":"c2","documents":[{"id":"back","text":"Redis is back."}]}' \
        >/dev/null 2>&1 && break
    sleep 0.1
done
[ "$i" -lt 100 ] || fail "ingest still refused after redis came back"
[ "$(rcli exists 'omni:{rag:c2}:doc:back')" = 1 ] || fail "not written to redis"
expect NOT_FOUND "collection 'c1' not found" query '{"collection":"c1","query":"valid"}'
grep -c '"redis: connection lost' "$OMNI_BROKER_LOG" | grep -qx 1 ||
    fail "want one warning for the outage"

# Dimension mismatch: a worker embedding with 256 dimensions refuses a
# collection that Redis records as 384-dimensional.
omni_stop || fail "broker exit status $?"
export OMNI_RAG_DIM=256 OMNI_REDIS_URL=
start_redis
rcli hset 'omni:{rag:d384}:meta' dim 384 embedder local >/dev/null
omni_start_broker
omni_wait_ready 20 || fail "broker not ready"
for ((i = 0; i < 50; i++)); do
    rag list '{}' 2>/dev/null | grep -q d384 && break
    sleep 0.1
done
expect BAD_REQUEST "dimension mismatch: collection 'd384' holds 384-dimension" ingest \
    '{"collection":"d384","documents":[{"id":"b","text":"two five six"}]}'
expect BAD_REQUEST "dimension mismatch" query '{"collection":"d384","query":"three"}'
omni_stop || fail "broker exit status $?"
omni_check_log
echo "ok"
