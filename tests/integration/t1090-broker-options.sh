#!/usr/bin/env bash
# t1090-broker-options: -c FILE, -o key=value, --print-config and -v;
# bad options and bad settings exit non-zero with a message naming them;
# the loaded file is passed on to workers as OMNI_CONFIG.
. "$(dirname "$0")/lib.sh"
omni_setup
conf=$OMNI_TEST_DIR/omni.conf
printf 'broker.queue_max = 17\nbroker.heartbeat_ms = 750\n' >"$conf"
B=$OMNI_BIN/omni-broker

out=$("$B" -c "$conf" -o broker.queue_max=23 --print-config) ||
    fail "--print-config failed"
grep -q '^broker.queue_max = 23  # option' <<<"$out" ||
    fail "-o did not win: $(grep queue_max <<<"$out")"
grep -q '^broker.heartbeat_ms = 750  # file' <<<"$out" ||
    fail "file value missing: $(grep heartbeat_ms <<<"$out")"
grep -q "^socket = $OMNI_SOCKET  # env" <<<"$out" || fail "env value missing"

err=$("$B" -o no.such.key=1 2>&1) && fail "unknown -o key accepted"
grep -q "no.such.key" <<<"$err" || fail "error does not name the key: $err"
err=$("$B" -o broker.queue_max=-5 2>&1) && fail "out-of-range value accepted"
grep -q "broker.queue_max" <<<"$err" || fail "error does not name it: $err"
err=$("$B" -c "$OMNI_TEST_DIR/missing.conf" 2>&1) && fail "missing file accepted"
grep -q "missing.conf" <<<"$err" || fail "error does not name the file: $err"
"$B" --bogus >/dev/null 2>&1 && fail "unknown option accepted"
"$B" stray >/dev/null 2>&1 && fail "stray argument accepted"

# -v logs at debug: peer credentials of each connection.
omni_start_broker -c "$conf" -v -o broker.queue_max=3
omni_wait_ready || fail "broker not ready"
grep -q "client [0-9]* connected: pid [0-9]* uid $(id -u)" "$OMNI_BROKER_LOG" ||
    fail "-v: no debug line with the peer credentials"
[ "$(omni_stat services echo queued)" = 0 ] || fail "stats"
# The worker got the file: it runs with OMNI_CONFIG set to it.
wpid=$(grep -o "ready: pid [0-9]*" "$OMNI_BROKER_LOG" | tail -n 1 | cut -d' ' -f3)
tr '\0' '\n' <"/proc/$wpid/environ" | grep -qx "OMNI_CONFIG=$conf" ||
    fail "worker $wpid has no OMNI_CONFIG=$conf"
tr '\0' '\n' <"/proc/$wpid/environ" | grep -qx "OMNI_SOCKET=$OMNI_SOCKET" ||
    fail "worker $wpid has no OMNI_SOCKET"
tr '\0' '\n' <"/proc/$wpid/environ" | grep -q "^OMNI_PARENT_FD=[0-9]" ||
    fail "worker $wpid has no OMNI_PARENT_FD"
# A second broker on the same socket refuses to start.
"$B" >"$OMNI_TEST_DIR/second.log" 2>&1 && fail "second broker started"
grep -q "already listening" "$OMNI_TEST_DIR/second.log" ||
    fail "second broker: $(cat "$OMNI_TEST_DIR/second.log")"
[ -S "$OMNI_SOCKET" ] || fail "the second broker removed the live socket"
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: options, config file, debug log"
