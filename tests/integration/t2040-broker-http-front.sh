#!/usr/bin/env bash
# t2040-broker-http-front: with http_listen set, http.mode process and an
# omni-http binary beside the workers, the broker starts it with the socket in its
# environment and restarts it when it dies; with http_listen empty it
# does not.  (A fake omni-http that connects as a client stands in.)
. "$(dirname "$0")/lib.sh"
omni_setup
fake=$OMNI_TEST_DIR/bin
mkdir -p "$fake"
ln -s "$(realpath "$OMNI_BIN/omni-echo")" "$fake/omni-echo"
cat >"$fake/omni-http" <<PY
#!/usr/bin/python3
import os, socket, time
with open("$OMNI_TEST_DIR/http.env", "a") as f:
    f.write("%d %s\n" % (os.getpid(), os.environ.get("OMNI_SOCKET", "")))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["OMNI_SOCKET"])
time.sleep(60)
PY
chmod +x "$fake/omni-http"
export OMNI_WORKER_DIR=$fake OMNI_RESTART_MIN_MS=100 OMNI_HTTP_MODE=process
OMNI_HTTP_LISTEN=127.0.0.1:$(free_port)
export OMNI_HTTP_LISTEN
omni_start_broker
omni_wait_ready || fail "broker not ready"
for ((i = 0; i < 50; i++)); do
    [ -s "$OMNI_TEST_DIR/http.env" ] && break
    sleep 0.1
done
read -r hpid hsock <"$OMNI_TEST_DIR/http.env" || fail "omni-http never ran"
[ "$hsock" = "$OMNI_SOCKET" ] || fail "omni-http got OMNI_SOCKET='$hsock'"
grep -q "started omni-http (pid $hpid)" "$OMNI_BROKER_LOG" ||
    fail "no start of omni-http logged"
sleep 0.3
kill -9 "$hpid"
for ((i = 0; i < 50; i++)); do
    [ "$(wc -l <"$OMNI_TEST_DIR/http.env")" -ge 2 ] && break
    sleep 0.1
done
[ "$(wc -l <"$OMNI_TEST_DIR/http.env")" -ge 2 ] || fail "omni-http not restarted"
grep -q "omni-http (pid $hpid) killed by signal 9; restart in" \
    "$OMNI_BROKER_LOG" || fail "death of omni-http not logged"
grep -q "omni-http (pid $hpid) killed by signal 9 before it was ready" \
    "$OMNI_BROKER_LOG" && fail "a connected omni-http counted as a start-up failure"
omni_stop || fail "broker exited with status $?"
read -r h2 _ < <(tail -n 1 "$OMNI_TEST_DIR/http.env")
kill -0 "$h2" 2>/dev/null && fail "omni-http $h2 survived the broker"

# http_listen empty: no HTTP front.
export OMNI_HTTP_LISTEN=
: >"$OMNI_BROKER_LOG"
omni_start_broker
omni_wait_ready || fail "broker not ready"
grep -q "omni-http" "$OMNI_BROKER_LOG" && fail "omni-http started while disabled"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: HTTP front supervised"
