#!/usr/bin/env bash
# t1050-broker-no-service: a request for a service that is not configured
# is answered NO_SERVICE at once, naming the service; the connection
# stays usable.
. "$(dirname "$0")/lib.sh"
omni_setup
omni_start_broker
omni_wait_ready || fail "broker not ready"

err=$("$OMNI_BIN/omni" call no_such_svc op '{}' 2>&1 >/dev/null) &&
    fail "omni call of an unknown service exited 0"
grep -q 'NO_SERVICE' <<<"$err" || fail "got '$err', want NO_SERVICE"
grep -q 'no_such_svc' <<<"$err" || fail "error '$err' does not name the service"

omni_py - <<'PY' || exit $?
from omnitest import *
c = Conn()
t0 = time.time()
c.req(9, "llm-nope", "chat", {})
m = c.recv(5)
dt = time.time() - t0
check(m["t"] == "error" and m["id"] == 9, "got %r" % m)
check(m["code"] == "NO_SERVICE", "code %r, want NO_SERVICE" % m["code"])
check(m["status"] == 404, "status %r, want 404" % m["status"])
check("llm-nope" in m["message"], "message %r lacks the name" % m["message"])
check(dt < 1.0, "NO_SERVICE took %.3f s, want it at once" % dt)
c.req(10, "echo", "echo", {"still": "here"})
chunks, end = c.until_end(10)
check(end["t"] == "final" and body(end) == {"still": "here"},
      "after NO_SERVICE: got %r" % end)
# The built-in service rejects unknown operations.
c.req(11, "omni", "nope", {})
chunks, end = c.until_end(11)
check(end["t"] == "error" and end["code"] == "UNSUPPORTED", "got %r" % end)
print("ok")
PY
omni_stop || fail "broker exited with status $?"
omni_check_log
echo "ok: NO_SERVICE names the service"
