#!/usr/bin/env bash
# run.sh - what Omni's LLM path costs, measured against the same upstream
# called directly, in the same run.
#
#   bench/llm/run.sh [-p PARTS] [-d SECS] [-w SECS] [-r "RATES"]
#                    [-t SECS] [-n STREAMS] [-H SECS] [-C broker|http]
#                    [-M broker|process] [-o FILE]
#
# The upstream is nginx (Debian nginx-light, with its echo module) run as
# a foreground process from a config written to a temp dir: a fixed
# OpenAI chat.completion for POST /v1/chat/completions, a fixed SSE
# stream when the request says Accept: text/event-stream, and a slow SSE
# stream (echo_sleep between chunks) under /slow/v1/.  Omni is
# omni-broker with omni-llm and its HTTP front (binaries from
# ${OMNI_BUILD:-build}/bin), no cache, pointed at that nginx.  -M: the
# front as omni-http (process, the default) or in the broker's loop
# (broker).
#
# Parts (-p, default "abc"):
#   a  JSON replies: open-loop latency at each rate of -r (default
#      "1000 5000") through omni-http and straight to nginx (omni-httpload,
#      latency from each request's scheduled time); closed-loop maximum
#      throughput of both (wrk, 64 connections); the same maximum through
#      the broker socket without the HTTP front (omni-bench); CPU time per
#      request of omni-broker, omni-http and omni-llm (utime+stime from
#      /proc/PID/stat before and after each run) against nginx's own.
#   b  the same for streamed replies, with time to first SSE event.
#   c  -n (10000) streams held open at once through one omni-llm against
#      the slow upstream (each lasts -H, 10, seconds); client omni-bench on
#      the broker socket (-C broker, default) or omni-httpload through
#      omni-http (-C http); peak in-flight at the broker, peak upstream
#      connections at nginx, resident memory (VmRSS) of the broker and
#      worker idle and at peak, all streams completed.
#   o  the broker-only path: bench/broker.sh (echo workers), for comparison.
#
# -d: measured seconds per open-loop run (10); -w: warm-up seconds (2);
# -t: seconds per wrk run (10); -o: keep the raw JSON lines there.
# PERF=DIR (env): perf record (DWARF call graphs) of the three Omni
# (or two) processes during each Omni max run, kept as DIR/{a,b}.omni.max.data.
# Prints a table (bench/llm/report.py).  Exit 0 measured (whatever the
# figures; failed or late requests are counted in the table), 1 a step
# could not run or part c lost streams, 77 a tool or binary is missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BIN=${OMNI_BUILD:-build}/bin
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac

PARTS=abc DUR=10 WARM=2 RATES="1000 5000" WRK_S=10 STREAMS=10000 HOLD=10
CLIENT=broker OUT= MODE=process
while getopts "p:d:w:r:t:n:H:C:M:o:h" o; do
    case $o in
    p) PARTS=$OPTARG ;;
    d) DUR=$OPTARG ;;
    w) WARM=$OPTARG ;;
    r) RATES=$OPTARG ;;
    t) WRK_S=$OPTARG ;;
    n) STREAMS=$OPTARG ;;
    H) HOLD=$OPTARG ;;
    C) CLIENT=$OPTARG ;;
    M) MODE=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

for b in omni-broker omni-llm omni-http omni omni-bench omni-httpload; do
    if [ ! -x "$BIN/$b" ]; then
        echo "skip: no $BIN/$b (run make first)"
        exit 77
    fi
done
for t in nginx wrk python3; do
    command -v $t >/dev/null || { echo "skip: $t is not installed"; exit 77; }
done
ECHO_MOD=/usr/lib/nginx/modules/ngx_http_echo_module.so
[ -f $ECHO_MOD ] || { echo "skip: no nginx echo module ($ECHO_MOD)"; exit 77; }

# 10,000 streams need about 10,000 descriptors in the worker, nginx and
# the client each; root may raise the hard limit, others take what is.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
dir=$(mktemp -d /tmp/omni-llmbench.XXXXXX) || exit 1
out=${OUT:-$dir/results.jsonl}
: >"$out"
nginx_pid='' broker='' c_failed=''
stop_broker() {
    [ -n "$broker" ] || return 0
    kill -TERM "$broker" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$broker" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$broker" 2>/dev/null
    wait "$broker" 2>/dev/null
    broker=
}
cleanup() {
    stop_broker
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null
        wait "$nginx_pid" 2>/dev/null
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
wait_port() {  # port: until it accepts a connection (5 s)
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

NGX_PORT=$(free_port)
HTTP_PORT=$(free_port)
MODEL=openai/gpt-4o-mini
BODY='{"model":"'$MODEL'","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":64,"temperature":0}'
SBODY='{"model":"'$MODEL'","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":64,"temperature":0}'
AUTH='Authorization: Bearer sk-bench'
SSE_ACCEPT='Accept: text/event-stream'

# ------------------------------------------------------------- upstream
reply='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":11,"total_tokens":35},"system_fingerprint":"fp_bench"}'
chunk() {  # delta JSON, finish reason: one SSE event of a chat stream
    printf 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}\\n\\n' "$1" "$2"
}
words=("Hello" "," " benchmark" "!" " How" " can" " I" " help" " you" " today" "?")
sse=$(chunk '{"role":"assistant","content":"","refusal":null}' null)
for w in "${words[@]}"; do
    sse+=$(chunk '{"content":"'"$w"'"}' null)
done
sse+=$(chunk '{}' '"stop"')
usage='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench","choices":[],"usage":{"prompt_tokens":24,"completion_tokens":11,"total_tokens":35}}\n\n'
sse+=$usage'data: [DONE]\n\n'
# The slow stream: the same events, one every HOLD/11 seconds.
step_s=$(python3 -c "print('%.3f' % ($HOLD / ${#words[@]}))")
slow="echo -n '$(chunk '{"role":"assistant","content":""}' null)'; echo_flush;"
for w in "${words[@]}"; do
    slow+=" echo_sleep $step_s; echo -n '$(chunk '{"content":"'"$w"'"}' null)'; echo_flush;"
done
slow+=" echo -n '$(chunk '{}' '"stop"')${usage}data: [DONE]\n\n';"

mkdir -p "$dir/nginx"
cat >"$dir/nginx/nginx.conf" <<EOF
load_module $ECHO_MOD;
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 40000; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$NGX_PORT backlog=16384;
        location = /v1/chat/completions {
            if (\$http_accept = "text/event-stream") { rewrite ^ /sse last; }
            default_type application/json;
            return 200 '$reply';
        }
        location = /sse {
            internal;
            default_type text/event-stream;
            return 200 '$sse';
        }
        location = /slow/v1/chat/completions {
            default_type text/event-stream;
            $slow
        }
        location = /nginx_status { stub_status; }
    }
}
EOF
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" \
    2>>"$dir/nginx/stderr.log" &
nginx_pid=$!
if ! wait_port "$NGX_PORT"; then
    echo "bench: nginx did not start; its log:" >&2
    cat "$dir/nginx/error.log" "$dir/nginx/stderr.log" >&2
    exit 1
fi
NGX_URL=http://127.0.0.1:$NGX_PORT/v1/chat/completions
OMNI_URL=http://127.0.0.1:$HTTP_PORT/v1/chat/completions

# ---------------------------------------------------------------- Omni
export OMNI_SOCKET=$dir/omni.sock
export OMNI_SERVICES=llm
export OMNI_HTTP_LISTEN=127.0.0.1:$HTTP_PORT
export OMNI_HTTP_MODE=$MODE
export OMNI_CACHE_TTL_S=0
export OMNI_LOG_LEVEL=${OMNI_LOG_LEVEL:-warn}
export OPENAI_API_KEY=sk-bench
export OMNI_WORKER_DIR=$BIN
unset OMNI_CONFIG OMNI_REDIS_URL ANTHROPIC_API_KEY GEMINI_API_KEY \
    AZURE_OPENAI_API_KEY AWS_ACCESS_KEY_ID OMNI_PROVIDERS

pid_of() {  # comm: the broker's child of that name
    ps -o pid=,comm= --ppid "$broker" | awk -v c="$1" '$2 == c {print $1}'
}
start_broker() {  # base URL; extra env as NAME=VALUE...
    local base=$1
    shift
    env OPENAI_BASE_URL="$base" "$@" "$BIN/omni-broker" \
        >>"$dir/broker.log" 2>&1 &
    broker=$!
    for _ in $(seq 150); do
        if "$BIN/omni" ping >/dev/null 2>&1 &&
            curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/health"; then
            BROKER_PID=$broker
            LLM_PID=$(pid_of omni-llm)
            HTTP_PID=$(pid_of omni-http)
            OMNI_PIDS=$BROKER_PID,$LLM_PID${HTTP_PID:+,$HTTP_PID}
            [ -n "$LLM_PID" ] &&
                { [ "$MODE" = broker ] || [ -n "$HTTP_PID" ]; } && return 0
        fi
        kill -0 "$broker" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: omni-broker not ready; its log:" >&2
    tail -n 40 "$dir/broker.log" >&2
    exit 1
}

cpu_ticks() {  # pid...: utime+stime of each, in clock ticks ("": 0)
    local p
    for p in "$@"; do
        [ -n "$p" ] || { printf '0 '; continue; }
        awk '{printf "%d ", $14 + $15}' "/proc/$p/stat" 2>/dev/null || printf '0 '
    done
}
TICK=$(getconf CLK_TCK)

# run name kind command...: run a load step with CPU sampled around it
# and append {"step","kind","result","cpu_s":{...}} to $out.  kind is
# json (the command prints one JSON line) or wrk (wrk's text output).
run() {
    local name=$1 kind=$2 line rc before after
    shift 2
    echo "bench: $name" >&2
    before=$(cpu_ticks "$BROKER_PID" "$HTTP_PID" "$LLM_PID" "$nginx_pid")
    line=$("$@" 2>"$dir/step.err")
    rc=$?
    after=$(cpu_ticks "$BROKER_PID" "$HTTP_PID" "$LLM_PID" "$nginx_pid")
    if [ "$kind" = wrk ]; then
        line=$(printf '%s\n' "$line" | python3 "$here/report.py" wrk2json)
    fi
    if [ -z "$line" ]; then
        echo "bench: '$name' failed (exit $rc):" >&2
        cat "$dir/step.err" >&2
        exit 1
    fi
    python3 - "$name" "$TICK" "$before" "$after" "$line" >>"$out" <<'PY'
import json, sys
name, tick, before, after, line = sys.argv[1:]
b = [int(x) for x in before.split()]
a = [int(x) for x in after.split()]
procs = ["omni-broker", "omni-http", "omni-llm", "nginx"]
cpu = {p: (a[i] - b[i]) / float(tick) for i, p in enumerate(procs)}
print(json.dumps({"step": name, "result": json.loads(line), "cpu_s": cpu}))
PY
    # failed or late requests are a result (the table shows them), not
    # a reason to stop
    [ "$rc" -ne 0 ] && echo "bench: '$name' counted failures: $line" >&2
    return 0
}

wrk_script() {  # file body [accept]: a wrk Lua script POSTing body
    {
        echo 'wrk.method = "POST"'
        printf 'wrk.body = [[%s]]\n' "$2"
        echo 'wrk.headers["Content-Type"] = "application/json"'
        echo 'wrk.headers["Authorization"] = "Bearer sk-bench"'
        [ -n "${3:-}" ] && echo 'wrk.headers["Accept"] = "text/event-stream"'
    } >"$1"
}
wrk_script "$dir/json.lua" "$BODY"
wrk_script "$dir/sse.lua" "$SBODY" sse

# part kind(json|sse) body: open-loop rates, then closed-loop maxima
latency_part() {
    local p=$1 body=$2 r extra=() lua=$dir/json.lua
    if [ "$p" = b ]; then
        extra=(--stream -H "$SSE_ACCEPT")
        lua=$dir/sse.lua
    fi
    for r in $RATES; do
        run "$p.direct.$r" json "$BIN/omni-httpload" -u "$NGX_URL" -R "$r" \
            -d "$DUR" -w "$WARM" -c 64 -b "$body" -H "$AUTH" "${extra[@]}"
        run "$p.omni.$r" json "$BIN/omni-httpload" -u "$OMNI_URL" -R "$r" \
            -d "$DUR" -w "$WARM" -c 64 -b "$body" -H "$AUTH" "${extra[@]}"
    done
    run "$p.direct.max" wrk wrk -t1 -c64 -d"${WRK_S}s" --latency \
        -s "$lua" "$NGX_URL"
    local perf_pid=
    if [ -n "${PERF:-}" ]; then
        # profile the Omni processes in the middle of the max run
        mkdir -p "$PERF"
        (sleep 1 && perf record -q -F 1000 --call-graph dwarf,16384 \
            -o "$PERF/$p.omni.max.data" \
            -p "$OMNI_PIDS" -- sleep $((WRK_S - 2)) \
            >/dev/null 2>&1) &
        perf_pid=$!
    fi
    run "$p.omni.max" wrk wrk -t1 -c64 -d"${WRK_S}s" --latency \
        -s "$lua" "$OMNI_URL"
    [ -n "$perf_pid" ] && wait "$perf_pid"
    local sflag=()
    [ "$p" = b ] && sflag=(--stream)
    # the broker socket straight to omni-llm: Omni without the HTTP front
    local n
    n=$(python3 -c "print(int(max(20000, 25000 * $WRK_S)))")
    run "$p.socket.max" json "$BIN/omni-bench" -s "$OMNI_SOCKET" -c 4 \
        -p 16 -n "$n" --duration "$WRK_S" --svc llm --op chat \
        --body "$body" "${sflag[@]}"
}

if [[ $PARTS == *a* || $PARTS == *b* ]]; then
    start_broker "http://127.0.0.1:$NGX_PORT/v1"
    # one request each way first: connections up, code paged in
    curl -sf -o /dev/null -H 'Content-Type: application/json' \
        -d "$BODY" "$OMNI_URL" || { echo "bench: first request failed" >&2; exit 1; }
    [[ $PARTS == *a* ]] && latency_part a "$BODY"
    [[ $PARTS == *b* ]] && latency_part b "$SBODY"
    stop_broker
fi

# ----------------------------------------------- c: many slow streams
rss_kb() {  # pid...: VmRSS of each, kB
    local p
    for p in "$@"; do
        [ -n "$p" ] || { printf '0 '; continue; }
        awk '/^VmRSS:/ {printf "%d ", $2}' "/proc/$p/status" 2>/dev/null || printf '0 '
    done
}
hwm_kb() {
    local p
    for p in "$@"; do
        [ -n "$p" ] || { printf '0 '; continue; }
        awk '/^VmHWM:/ {printf "%d ", $2}' "/proc/$p/status" 2>/dev/null || printf '0 '
    done
}
if [[ $PARTS == *c* ]]; then
    # Enough worker capacity and upstream connections for every stream,
    # the broker's client limit above the HTTP front's connections.
    start_broker "http://127.0.0.1:$NGX_PORT/slow/v1" \
        OMNI_CAPACITY_LLM=$((STREAMS + 100)) \
        OMNI_LLM_MAX_HOST_CONNECTIONS=0 \
        OMNI_MAX_CLIENTS=$((STREAMS + 100)) \
        OMNI_LLM_FIRST_BYTE_TIMEOUT_MS=600000 OMNI_LOG_LEVEL=info
    sleep 1
    idle=$(rss_kb "$BROKER_PID" "$LLM_PID" "$HTTP_PID")
    echo "bench: c.streams ($STREAMS streams of ${HOLD}s, client $CLIENT)" >&2
    if [ "$CLIENT" = http ]; then
        "$BIN/omni-httpload" -u "$OMNI_URL" -R 5000 -n "$STREAMS" \
            -c "$STREAMS" -b "$SBODY" -H "$AUTH" --stream \
            --timeout $((HOLD * 6 + 30)) >"$dir/c.json" 2>"$dir/c.err" &
    else
        "$BIN/omni-bench" -s "$OMNI_SOCKET" -c 10 -n "$STREAMS" \
            -p $(((STREAMS + 9) / 10)) --svc llm --op chat --body "$SBODY" \
            --stream --timeout $((HOLD * 6 + 30)) >"$dir/c.json" \
            2>"$dir/c.err" &
    fi
    client=$!
    t0=$(date +%s.%N)
    : >"$dir/c.samples"
    while kill -0 "$client" 2>/dev/null; do
        inflight=$("$BIN/omni" stats 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])' 2>/dev/null)
        upstream=$(curl -s "http://127.0.0.1:$NGX_PORT/nginx_status" |
            awk '/Active connections/ {print $3}')
        echo "$(date +%s.%N) ${inflight:-0} ${upstream:-0} $(rss_kb "$BROKER_PID" "$LLM_PID" "$HTTP_PID")" \
            >>"$dir/c.samples"
        sleep 0.5
    done
    wait "$client"
    rc=$?
    t1=$(date +%s.%N)
    hwm=$(hwm_kb "$BROKER_PID" "$LLM_PID" "$HTTP_PID")
    line=$(cat "$dir/c.json")
    if [ -z "$line" ]; then
        echo "bench: c.streams client failed (exit $rc):" >&2
        cat "$dir/c.err" >&2
        exit 1
    fi
    python3 - "$STREAMS" "$HOLD" "$CLIENT" "$idle" "$hwm" "$t0" "$t1" \
        "$dir/c.samples" "$line" >>"$out" <<'PY'
import json, sys
n, hold, client, idle, hwm, t0, t1, samples, line = sys.argv[1:]
idle = [int(x) for x in idle.split()]
hwm = [int(x) for x in hwm.split()]
peak_in = peak_up = 0
peak_rss = [0, 0, 0]
for s in open(samples):
    f = s.split()
    if len(f) < 6:
        continue
    peak_in = max(peak_in, int(f[1]))
    peak_up = max(peak_up, int(f[2]) - 1)  # less the stats request
    for i in range(3):
        peak_rss[i] = max(peak_rss[i], int(f[3 + i]))
procs = ["omni-broker", "omni-llm", "omni-http"]
print(json.dumps({"step": "c.streams", "streams": int(n), "hold_s": float(hold),
                  "client": client, "secs": float(t1) - float(t0),
                  "peak_in_flight": peak_in, "peak_upstream_conns": peak_up,
                  "rss_idle_kb": dict(zip(procs, idle)),
                  "rss_peak_kb": dict(zip(procs, peak_rss)),
                  "hwm_kb": dict(zip(procs, hwm)),
                  "result": json.loads(line)}))
PY
    stop_broker
    c_ok=$(printf '%s\n' "$line" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("ok", 0))')
    if [ "$rc" -ne 0 ] || [ "$c_ok" != "$STREAMS" ]; then
        echo "bench: c.streams: $c_ok of $STREAMS completed: $line" >&2
        echo "bench: broker log (warnings, errors, lost workers):" >&2
        grep -E '"level":"(warn|error)"|lost' "$dir/broker.log" |
            tail -n 20 >&2
        c_failed=1
    fi
fi

# ------------------------------------------------- o: broker-only path
if [[ $PARTS == *o* ]]; then
    echo "bench: o.broker (bench/broker.sh)" >&2
    if [ -x "$BIN/omni-echo" ] && [ -x "$BIN/omni-floor" ]; then
        OMNI_BUILD=${OMNI_BUILD:-build} LAT_N=${LAT_N:-10000} \
            TPUT_N=${TPUT_N:-200000} BENCH_OUT="$dir/broker.jsonl" \
            "$here/../broker.sh" >"$dir/broker.txt" 2>/dev/null ||
            echo "bench: bench/broker.sh failed" >&2
        python3 -c 'import json, sys
r = {}
for l in open(sys.argv[1]):
    d = json.loads(l)
    r[d["step"]] = d["result"]
print(json.dumps({"step": "o.broker", "result": r}))' "$dir/broker.jsonl" >>"$out"
    else
        echo "bench: no omni-echo/omni-floor in $BIN; part o skipped" >&2
    fi
fi

echo
echo "Omni LLM path, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg), http.mode $MODE"
python3 "$here/report.py" table "$out"
[ -n "$OUT" ] || { echo "raw results:"; cat "$out"; } >&2
[ -z "${c_failed:-}" ]
