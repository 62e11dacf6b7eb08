#!/usr/bin/env bash
# broker.sh - Omni through the broker against the bare transport floors.
#
#   bench/broker.sh                    (from the repo root, after make)
#
# Starts omni-broker with echo workers in a temporary runtime dir (the
# repo's binaries from ${OMNI_BUILD:-build}/bin), measures in the same
# run the floors (bare Unix-socket and ZeroMQ ipc echo round trips,
# omni-floor) and Omni (omni-bench: 1 in flight for latency, many for
# throughput), and prints a table: p50/p99 through Omni against the sum
# of the two floors (one client hop + one worker hop), and throughput
# against the 100,000 req/s target.  Raw JSON lines go to
# $BENCH_OUT (default: a file in the temp dir, printed at the end).
#
# Knobs (env): ECHO_WORKERS (2), LAT_N (20000), TPUT_CONNS (4),
# TPUT_INFLIGHT (64 per connection), TPUT_N (400000).
# Exit: 0 measured (whatever the figures), 1 a step failed (including
# mismatched or missing replies), 77 binaries missing.
set -u
BIN=${OMNI_BUILD:-build}/bin
for b in omni-broker omni-echo omni omni-bench omni-floor; do
    if [ ! -x "$BIN/$b" ]; then
        echo "skip: no $BIN/$b (run make first)"
        exit 77
    fi
done

ECHO_WORKERS=${ECHO_WORKERS:-2}
LAT_N=${LAT_N:-20000}
TPUT_CONNS=${TPUT_CONNS:-4}
TPUT_INFLIGHT=${TPUT_INFLIGHT:-64}
TPUT_N=${TPUT_N:-400000}

dir=$(mktemp -d /tmp/omni-bench.XXXXXX) || exit 1
out=${BENCH_OUT:-$dir/results.jsonl}
broker=
cleanup() {
    if [ -n "$broker" ] && kill -0 "$broker" 2>/dev/null; then
        kill -TERM "$broker"
        wait "$broker" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export OMNI_SOCKET=$dir/omni.sock
export OMNI_SERVICES=echo
export OMNI_WORKERS_ECHO=$ECHO_WORKERS
export OMNI_HTTP_LISTEN=
export OMNI_LOG_LEVEL=${OMNI_LOG_LEVEL:-warn}
unset OMNI_CONFIG OMNI_REDIS_URL

step() {  # name, command...: run, keep the JSON line, stop on failure
    local name=$1 line
    shift
    echo "bench: $name" >&2
    if ! line=$("$@"); then
        echo "bench: '$name' failed: $line" >&2
        exit 1
    fi
    echo "{\"step\":\"$name\",\"result\":$line}" >>"$out"
}

: >"$out"
step unix_lat "$BIN/omni-floor" unix -n "$LAT_N"
step unix_pipe "$BIN/omni-floor" unix -n 200000 -p 256
step zmq_lat "$BIN/omni-floor" zmq -n "$LAT_N"
step zmq_pipe "$BIN/omni-floor" zmq -n 200000 -p 256

"$BIN/omni-broker" 2>"$dir/broker.log" &
broker=$!
if ! "$BIN/omni" ping -w 15 >/dev/null; then
    echo "bench: broker not ready; its log:" >&2
    tail -n 30 "$dir/broker.log" >&2
    exit 1
fi
step omni_lat "$BIN/omni-bench" -c 1 -n "$LAT_N" -p 1
step omni_tput "$BIN/omni-bench" -c "$TPUT_CONNS" -n "$TPUT_N" \
    -p "$TPUT_INFLIGHT"

python3 - "$out" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    r[d["step"]] = d["result"]
ul, zl, ol = r["unix_lat"], r["zmq_lat"], r["omni_lat"]
ot = r["omni_tput"]
def ratio(a, b):
    return "%.1fx" % (a / b) if b else "n/a"
p50f = ul["p50_us"] + zl["p50_us"]
p99f = ul["p99_us"] + zl["p99_us"]
print("%-34s %10s %10s %8s" % ("", "Omni", "floor", "ratio"))
print("%-34s %10d %10d %8s" % ("latency p50 (us, 1 in flight)",
      ol["p50_us"], p50f, ratio(ol["p50_us"], p50f)))
print("%-34s %10d %10d %8s" % ("latency p99 (us, 1 in flight)",
      ol["p99_us"], p99f, ratio(ol["p99_us"], p99f)))
print("%-34s %10.0f %10s %8s" % ("throughput (req/s)", ot["rps"],
      "100000", "%.0f%%" % (100.0 * ot["rps"] / 100000)))
print("floors: unix p50 %d us, %.0f msg/s pipelined; zmq p50 %d us, "
      "%.0f msg/s pipelined" % (ul["p50_us"], r["unix_pipe"]["msgs_per_s"],
      zl["p50_us"], r["zmq_pipe"]["msgs_per_s"]))
print("throughput run: %d sent, %d ok, errors %s, p50 %d us, p99 %d us" %
      (ot["sent"], ot["ok"], json.dumps(ot["errors"]), ot["p50_us"],
       ot["p99_us"]))
PY
echo "raw results:" >&2
cat "$out" >&2
