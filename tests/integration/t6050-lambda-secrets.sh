#!/usr/bin/env bash
# t6050-lambda-secrets: provider keys from Secrets Manager.  With
# OMNI_SECRETS_ARN set, the extension calls GetSecretValue (against a
# local fake via AWS_ENDPOINT_URL_SECRETS_MANAGER), signed with SigV4
# and the session token; the SecretString's keys reach the llm worker
# (the provider sees the key); no log line holds a secret.  A secret the
# function may not read fails init with Extension.SecretsUnavailable.
. "$(dirname "$0")/lambda_lib.sh"
lambda_setup
unset OPENAI_API_KEY
SECRET_KEY=sk-from-secrets-manager-7f3a9c
export AWS_ACCESS_KEY_ID=AKIATESTLAMBDA0001 AWS_REGION=eu-west-1
export AWS_SECRET_ACCESS_KEY=secret-access-key-for-tests-0123456789
export AWS_SESSION_TOKEN=session-token-for-tests-abcdef
export OMNI_SECRETS_ARN=arn:aws:secretsmanager:eu-west-1:123456789012:secret:omni-keys-AbCdEf
export SECRET_KEY

cat >"$OMNI_TEST_DIR/fake_sm.py" <<'PY'
import json, os, re, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

calls = []

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        calls.append({"target": self.headers.get("X-Amz-Target"),
                      "ctype": self.headers.get("Content-Type"),
                      "token": self.headers.get("x-amz-security-token"),
                      "date": self.headers.get("x-amz-date"),
                      "auth": auth, "body": json.loads(body)})
        with open(sys.argv[1], "w") as f:
            json.dump(calls, f)
        arn = json.loads(body)["SecretId"]
        if arn.endswith("denied"):
            out, st = {"__type": "AccessDeniedException",
                       "message": "not allowed"}, 400
        else:
            out, st = {"ARN": arn, "Name": "omni-keys",
                       "SecretString": json.dumps({
                           "OPENAI_API_KEY": os.environ["SECRET_KEY"],
                           "not a name": "x", "NUM": 5}),
                       "VersionId": "v1"}, 200
        data = json.dumps(out).encode()
        self.send_response(st)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

srv = HTTPServer(("127.0.0.1", 0), H)
print("listening", srv.server_address[1], flush=True)
srv.serve_forever()
PY
/usr/bin/python3 "$OMNI_TEST_DIR/fake_sm.py" "$OMNI_TEST_DIR/sm_calls.json" \
    >"$OMNI_TEST_DIR/sm.out" 2>&1 &
omni_track $!
for ((i = 0; i < 100; i++)); do
    grep -qs '^listening' "$OMNI_TEST_DIR/sm.out" && break
    sleep 0.1
done
SM=$(awk '/^listening/{print $2}' "$OMNI_TEST_DIR/sm.out")
[ -n "$SM" ] || fail "fake Secrets Manager did not start"
export AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$SM/

lambda_start_emu
lambda_py - <<'PY' || exit 1
import json, os, re, urllib.request
from lambda_emu import invoke
from omnitest import check

port, fake = int(os.environ["EMU"]), int(os.environ["FAKE"])
r = invoke(port, {"service": "llm", "op": "chat", "body": {
    "model": "openai/gpt-4o-mini",
    "messages": [{"role": "user", "content": "keyed"}]}})
check("x-amz-function-error" not in r["headers"], "chat: %r" % r)
last = json.load(urllib.request.urlopen(
    "http://127.0.0.1:%d/_fake/last" % fake))
auth = {k.lower(): v for k, v in last["headers"].items()}["authorization"]
check(auth == "Bearer " + os.environ["SECRET_KEY"],
      "the worker did not use the secret's key: %r" % auth[:12])

calls = json.load(open(os.environ["OMNI_TEST_DIR"] + "/sm_calls.json"))
check(len(calls) == 1, "got %d GetSecretValue calls" % len(calls))
c = calls[0]
check(c["target"] == "secretsmanager.GetSecretValue", "target %r" % c)
check(c["ctype"] == "application/x-amz-json-1.1", "content type %r" % c)
check(c["body"] == {"SecretId": os.environ["OMNI_SECRETS_ARN"]},
      "body %r" % c["body"])
check(c["token"] == os.environ["AWS_SESSION_TOKEN"], "token %r" % c)
check(re.fullmatch(r"\d{8}T\d{6}Z", c["date"] or ""), "x-amz-date %r" % c)
m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=AKIATESTLAMBDA0001/(\d{8})/"
                 r"eu-west-1/secretsmanager/aws4_request, "
                 r"SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}",
                 c["auth"])
check(m, "Authorization %r" % c["auth"])
check(m.group(1) == c["date"][:8], "credential date %r" % c["auth"])
signed = m.group(2).split(";")
for h in ("host", "x-amz-date", "x-amz-target"):
    check(h in signed, "%s not signed: %r" % (h, signed))
PY

for s in "$SECRET_KEY" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"; do
    grep -qF -- "$s" "$EMU_LOG" && fail "a secret is in the logs"
done
grep -q "secret '.*': 1 variables (OPENAI_API_KEY), 2 members skipped" \
    "$EMU_LOG" || fail "no secrets line in the log"
lambda_stop_emu

# A secret we may not read: init fails, the runtime never serves.
export OMNI_SECRETS_ARN=${OMNI_SECRETS_ARN%-AbCdEf}-denied
lambda_start_emu
lambda_py - <<'PY' || exit 1
import json, os
from lambda_emu import invoke
from omnitest import check
r = invoke(int(os.environ["EMU"]), {"service": "llm", "op": "models"})
j = json.loads(r["body"])
check(j.get("errorType") == "Extension.SecretsUnavailable", "got %r" % j)
check("AccessDeniedException" in j["errorMessage"], "got %r" % j)
PY
lambda_stop_emu
lambda_check_logs
echo ok
