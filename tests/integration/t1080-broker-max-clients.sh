#!/usr/bin/env bash
# t1080-broker-max-clients: over broker.max_clients a new connection gets
# one UNAVAILABLE error and is closed; the others keep working, and a
# slot freed by a close is usable again.  Peer credentials are counted.
. "$(dirname "$0")/lib.sh"
omni_setup
export OMNI_MAX_CLIENTS=3
omni_start_broker
omni_wait_ready || fail "broker not ready"

omni_py - <<'PY' || exit $?
from omnitest import *
cs = [Conn() for _ in range(3)]
for i, c in enumerate(cs):
    c.req(1, "echo", "echo", {"c": i})
    chunks, end = c.until_end(1)
    check(end["t"] == "final", "client %d: %r" % (i, end))
extra = Conn()
m = extra.recv(5)
check(m is not None and m["t"] == "error" and m["code"] == "UNAVAILABLE",
      "4th client: got %r" % m)
check("too many clients" in m["message"], "message %r" % m["message"])
check(extra.recv(5) is None, "4th client not closed")
cs[0].close()
time.sleep(0.2)
again = Conn()
again.req(5, "echo", "echo", {"again": 1})
chunks, end = again.until_end(5)
check(end["t"] == "final", "after a slot freed: %r" % end)
again.close()
for c in cs[1:]:
    c.close()
print("ok")
PY

sleep 0.2
[ "$(omni_stat peers "$(id -u)")" -ge 5 ] ||
    fail "peer uid count: got $(omni_stat peers "$(id -u)")"
omni_stop || fail "broker exited with status $?"
grep -q 'refusing clients' "$OMNI_BROKER_LOG" || fail "refusal not logged"
omni_check_log
echo "ok: max_clients enforced with an error"
