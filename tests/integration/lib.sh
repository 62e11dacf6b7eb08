# lib.sh - helpers sourced by every integration test (bash).
#
#   . "$(dirname "$0")/lib.sh"
#   omni_setup                  temp runtime dir, env, cleanup trap
#   omni_start_broker [ARGS]    omni-broker in the background
#   omni_wait_ready [SECS]      until `omni ping` answers ready
#   omni_stop                   SIGTERM the broker; returns its status
#   omni_check_log              fail on sanitizer reports in the broker log
#   omni_track PID              kill PID in the cleanup trap too
#   omni_start_fake             provider emulator on a free port; exports FAKE
#                               and OPENAI_BASE_URL pointing at it
#   omni_stat KEY...            a value from `omni stats` (path of keys)
#   omni_py                     python3 with module omnitest (raw client)
#   rag ARGS / json_py CODE     omni call rag; python CODE with j = stdin JSON
#   free_port                   print a free loopback TCP port
#   start_redis                 redis-server on a free port (or skip)
#   fail MSG / skip MSG         exit 1 / exit 77 with MSG
#
# Variables: OMNI_BUILD (binaries in $OMNI_BUILD/bin, default build),
# OMNI_TEST_DIR (the runtime dir), OMNI_BROKER_PID, OMNI_BROKER_LOG.
# Everything started through these helpers is killed on exit, and the
# broker log is shown when the test fails.

OMNI_BUILD=${OMNI_BUILD:-build}
OMNI_BIN=$OMNI_BUILD/bin
OMNI_PIDS=()
OMNI_BROKER_PID=
OMNI_TEST_DIR=

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "skip: $*"
    exit 77
}

omni_track() {
    OMNI_PIDS+=("$@")
}

# Kill pid and, first, its direct children (the broker's workers).
_omni_kill_tree() {
    local pid=$1 kids
    kids=$(ps -o pid= --ppid "$pid" 2>/dev/null)
    kill -KILL "$pid" 2>/dev/null
    for k in $kids; do kill -KILL "$k" 2>/dev/null; done
}

# Print the sanitizer reports in the logs given; status 0 if there are.
_omni_exit_reports() {
    grep -A 12 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$@" \
        2>/dev/null
}

_omni_cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$OMNI_TEST_DIR" ] &&
        [ -f "$OMNI_TEST_DIR/broker.log" ]; then
        echo "--- broker.log (last 60 lines)" >&2
        tail -n 60 "$OMNI_TEST_DIR/broker.log" >&2
    fi
    # Quiet from here: bash reports each killed job on stderr.
    exec 2>/dev/null
    if [ -n "$OMNI_BROKER_PID" ] && kill -0 "$OMNI_BROKER_PID"; then
        # A broker still up gets the graceful drain first (its workers
        # then exit normally and write their coverage data), and the
        # axe only if it does not finish within 3 s.
        kill -TERM "$OMNI_BROKER_PID"
        for _ in $(seq 30); do
            kill -0 "$OMNI_BROKER_PID" || break
            sleep 0.1
        done
        kill -0 "$OMNI_BROKER_PID" && _omni_kill_tree "$OMNI_BROKER_PID"
    fi
    for p in "${OMNI_PIDS[@]}"; do
        kill -0 "$p" && _omni_kill_tree "$p"
    done
    wait
    # What the processes reported as they exited (leaks are only known
    # then) fails a test that had passed.
    if [ "$rc" -eq 0 ] && [ -n "$OMNI_TEST_DIR" ] &&
        _omni_exit_reports "$OMNI_TEST_DIR/broker.log"; then
        echo "FAIL: sanitizer report in the broker log at exit"
        rc=1
    fi
    [ -n "$OMNI_TEST_DIR" ] && rm -rf "$OMNI_TEST_DIR"
    exit "$rc"
}

omni_setup() {
    [ -x "$OMNI_BIN/omni-broker" ] || fail "no $OMNI_BIN/omni-broker"
    OMNI_TEST_DIR=$(mktemp -d /tmp/omni-it.XXXXXX) || fail "mktemp"
    export OMNI_TEST_DIR
    export OMNI_SOCKET=$OMNI_TEST_DIR/omni.sock
    export OMNI_HTTP_LISTEN=
    export OMNI_SERVICES=${OMNI_SERVICES:-echo}
    export OMNI_LOG_LEVEL=${OMNI_LOG_LEVEL:-info}
    OMNI_BROKER_LOG=$OMNI_TEST_DIR/broker.log
    trap _omni_cleanup EXIT
    trap 'exit 130' INT TERM
    _omni_write_py
}

# omnitest.py: a raw protocol client for tests that need exact bytes,
# ids, sequence numbers or timing.  Needs python3-msgpack.
_omni_write_py() {
    cat >"$OMNI_TEST_DIR/omnitest.py" <<'PY'
import json, os, socket, struct, sys, time
try:
    import msgpack
except ImportError:
    print("skip: python3-msgpack is not installed")
    sys.exit(77)

class Conn:
    def __init__(self, path=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path or os.environ["OMNI_SOCKET"])
        self.buf = b""

    def raw(self, data):
        self.s.sendall(data)

    def frame(self, payload):
        self.raw(struct.pack(">I", len(payload)) + payload)

    def send(self, **m):
        m.setdefault("v", 1)
        self.frame(msgpack.packb(m, use_bin_type=True))

    def req(self, id, svc, op, body=None, **kw):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body if body is not None else {}).encode()
        self.send(t="req", id=id, svc=svc, op=op, body=body, **kw)

    def recv(self, timeout=10.0):
        """The next message as a dict, or None at end of stream."""
        end = time.time() + timeout
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    m = msgpack.unpackb(self.buf[4:4 + n], raw=False)
                    self.buf = self.buf[4 + n:]
                    return m
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no message within %.1f s" % timeout)
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                return None
            self.buf += d

    def until_end(self, id, timeout=10.0):
        """Chunks of request id, then its final or error message."""
        chunks = []
        while True:
            m = self.recv(timeout)
            if m is None:
                raise EOFError("connection closed before the end of %d" % id)
            if m.get("id") != id:
                continue
            if m["t"] == "chunk":
                chunks.append(m)
            else:
                return chunks, m

    def close(self):
        self.s.close()

def body(m):
    return json.loads(m["body"])

def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)
PY
}

omni_py() {
    PYTHONPATH=$OMNI_TEST_DIR /usr/bin/python3 "$@"
}

omni_stat() {
    "$OMNI_BIN/omni" stats | /usr/bin/python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$@"
}

# rag ARGS...: `omni call rag ARGS...`.
rag() { "$OMNI_BIN/omni" call rag "$@"; }

# json_py CODE: run python CODE with j = the JSON on stdin (asserts,
# prints).
json_py() {
    /usr/bin/python3 -c "import json, sys
j = json.load(sys.stdin)
$1"
}

omni_start_broker() {
    "$OMNI_BIN/omni-broker" "$@" >>"$OMNI_BROKER_LOG" 2>&1 &
    OMNI_BROKER_PID=$!
}

omni_wait_ready() {
    local secs=${1:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        "$OMNI_BIN/omni" ping >/dev/null 2>&1 && return 0
        if [ -n "$OMNI_BROKER_PID" ] &&
            ! kill -0 "$OMNI_BROKER_PID" 2>/dev/null; then
            echo "broker exited early; its log:" >&2
            cat "$OMNI_BROKER_LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "broker not ready after ${secs}s; its log:" >&2
    cat "$OMNI_BROKER_LOG" >&2
    return 1
}

omni_stop() {
    local pid=$OMNI_BROKER_PID i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "broker did not exit within 30 s of SIGTERM" >&2
        _omni_kill_tree "$pid"
    fi
    wait "$pid"
    local rc=$?
    OMNI_BROKER_PID=
    return $rc
}

omni_check_log() {
    if grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$OMNI_BROKER_LOG" >&2; then
        fail "sanitizer report in the broker log"
    fi
}

free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start_redis() {
    command -v redis-server >/dev/null || skip "redis-server is not installed"
    local port i
    port=$(free_port)
    mkdir -p "$OMNI_TEST_DIR/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$OMNI_TEST_DIR/redis" \
        >"$OMNI_TEST_DIR/redis.log" 2>&1 &
    omni_track $!
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            export OMNI_REDIS_URL=redis://127.0.0.1:$port/0
            return 0
        fi
        sleep 0.1
    done
    cat "$OMNI_TEST_DIR/redis.log" >&2
    fail "redis-server did not start on port $port"
}

# omni_start_fake: the provider emulator (tests/fakes/provider.js) on a
# free loopback port, killed in the cleanup trap; exports FAKE (its port)
# and OPENAI_BASE_URL (its OpenAI base URL).
omni_start_fake() {
    local i
    node tests/fakes/provider.js --port 0 >"$OMNI_TEST_DIR/fake.out" 2>&1 &
    omni_track $!
    for ((i = 0; i < 100; i++)); do
        grep -q '^listening' "$OMNI_TEST_DIR/fake.out" 2>/dev/null && break
        sleep 0.1
    done
    FAKE=$(awk '/^listening/{print $2}' "$OMNI_TEST_DIR/fake.out")
    [ -n "$FAKE" ] || fail "the provider emulator did not start"
    export FAKE OPENAI_BASE_URL=http://127.0.0.1:$FAKE/v1
}
