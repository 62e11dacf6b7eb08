#!/usr/bin/env bash
# t9000-lambda-package: the Lambda zips that `make lambda ARCH=...` wrote
# (build/lambda/{arm64,x86_64}/{function,layer}.zip).  For every ELF in
# them: built for the zip's architecture, and either needing no glibc
# symbol newer than provided.al2023's 2.34, or part of a complete
# bundled-loader layout (lib/ holds the loader and libc, every NEEDED of
# every ELF resolves inside the same zip, and each entry point is a
# script that execs the bundled loader with --library-path on an ELF of
# the zip).  The zip for this machine's architecture then runs under the
# Lambda emulator, unzipped as /opt and /var/task would be: a buffered
# and a streamed chat, then a clean SHUTDOWN.
. "$(dirname "$0")/lib.sh"
zips=()
for a in arm64 x86_64; do
    [ -f "build/lambda/$a/function.zip" ] && [ -f "build/lambda/$a/layer.zip" ] &&
        zips+=("$a")
done
[ ${#zips[@]} -gt 0 ] ||
    skip "no Lambda zips: run 'make lambda ARCH=x86_64' (or arm64) first"
command -v readelf >/dev/null || skip "readelf is not installed (binutils)"
command -v unzip >/dev/null || skip "unzip is not installed"
export PYTHONDONTWRITEBYTECODE=1
T=$(mktemp -d /tmp/omni-t9000.XXXXXX)
OMNI_TEST_DIR=$T
trap _omni_cleanup EXIT

for a in "${zips[@]}"; do
    for z in function layer; do
        mkdir -p "$T/$a/$z"
        unzip -q "build/lambda/$a/$z.zip" -d "$T/$a/$z" || fail "unzip $a/$z"
        echo "$a/$z.zip: $(stat -c %s "build/lambda/$a/$z.zip") bytes"
    done
done

/usr/bin/python3 - "$T" "${zips[@]}" <<'PY' || exit 1
import os, re, subprocess, sys

top, arches = sys.argv[1], sys.argv[2:]
MACHINE = {"arm64": "AArch64", "x86_64": "Advanced Micro Devices X86-64"}
LIMIT = (2, 34)
bad = []

def readelf(*a):
    return subprocess.run(["readelf", *a], capture_output=True,
                          text=True).stdout

def is_elf(p):
    with open(p, "rb") as f:
        return f.read(4) == b"\x7fELF"

def glibc_max(p):
    vs = {tuple(map(int, m)) for m in
          re.findall(r"GLIBC_(\d+)\.(\d+)", readelf("--dyn-syms", "-W", p))}
    return max(vs) if vs else (0, 0)

for arch in arches:
    for z in ("function", "layer"):
        root = os.path.join(top, arch, z)
        files = [os.path.join(d, f) for d, _, fs in os.walk(root)
                 for f in fs]
        elfs = [p for p in files if is_elf(p)]
        rel = lambda p: os.path.relpath(p, root)
        where = "%s/%s.zip" % (arch, z)
        entries = (["bootstrap"] if z == "function" else
                   ["extensions/omni", "bin/omni-broker", "bin/omni-llm",
                    "bin/omni-echo"])
        for e in entries:
            p = os.path.join(root, e)
            if not os.path.isfile(p) or not os.access(p, os.X_OK):
                bad.append("%s: no executable %s" % (where, e))
        newest = (0, 0)
        for p in elfs:
            m = re.search(r"Machine:\s+(.*)", readelf("-h", p))
            if not m or m.group(1).strip() != MACHINE[arch]:
                bad.append("%s: %s is not for %s" % (where, rel(p), arch))
            newest = max(newest, glibc_max(p))
        print("%s: %d ELF files, newest glibc symbol GLIBC_%d.%d" %
              (where, len(elfs), *newest))
        if newest <= LIMIT:
            continue
        # Bundled-loader layout: check it is complete.
        lib = os.path.join(root, "lib")
        loaders = [f for f in os.listdir(lib) if f.startswith("ld-linux")] \
            if os.path.isdir(lib) else []
        if not loaders:
            bad.append("%s: needs GLIBC_%d.%d but has no bundled loader" %
                       (where, *newest))
            continue
        if not os.path.isfile(os.path.join(lib, "libc.so.6")):
            bad.append("%s: no lib/libc.so.6" % where)
        for p in elfs:
            for n in re.findall(r"\(NEEDED\).*\[(.*)\]", readelf("-d", p)):
                if not os.path.isfile(os.path.join(lib, n)):
                    bad.append("%s: %s needs %s, not in lib/" %
                               (where, rel(p), n))
        scripts = [os.path.join(root, e) for e in entries]
        scripts += [os.path.join(root, "bin", f) for f in
                    os.listdir(os.path.join(root, "bin"))] \
            if os.path.isdir(os.path.join(root, "bin")) else []
        for s in scripts:
            if not os.path.isfile(s):
                continue
            if is_elf(s):
                if glibc_max(s) > LIMIT:
                    bad.append("%s: %s is an ELF needing GLIBC_%d.%d" %
                               (where, rel(s), *glibc_max(s)))
                continue
            text = open(s).read()
            m = re.search(r'exec "\$r/lib/(ld-linux[^"]*)" --library-path '
                          r'"\$r/lib" "\$r/([^"]+)"', text)
            if not m:
                bad.append("%s: %s does not exec the bundled loader" %
                           (where, rel(s)))
                continue
            up = "/.." if "/" in rel(s) else ""
            if up and "r=${0%/*}/.." not in text:
                bad.append("%s: %s computes the wrong root" % (where,
                                                               rel(s)))
            if m.group(1) not in loaders:
                bad.append("%s: %s names missing loader %s" %
                           (where, rel(s), m.group(1)))
            target = os.path.join(root, m.group(2))
            if not (os.path.isfile(target) and is_elf(target)):
                bad.append("%s: %s runs %s, not an ELF of the zip" %
                           (where, rel(s), m.group(2)))
        print("%s: bundled-loader layout (%s)" % (where, loaders[0]))

for b in bad:
    print("FAIL: " + b)
sys.exit(1 if bad else 0)
PY

# Run the zips for this machine's architecture under the emulator.
host=$(uname -m)
[ "$host" = aarch64 ] && host=arm64
if [ ! -d "$T/$host" ]; then
    echo "no $host zips: package checks only"
    echo ok
    exit 0
fi
command -v node >/dev/null || { echo "node missing: no run"; echo ok; exit 0; }
export OMNI_SOCKET=$T/omni.sock OMNI_SERVICES=echo,llm OMNI_LLM_RETRIES=0
unset OMNI_WORKER_DIR
omni_start_fake
export OPENAI_API_KEY=sk-t9000-key
/usr/bin/python3 tests/fakes/lambda_emu.py --opt "$T/$host/layer" \
    --task "$T/$host/function" --port 0 >"$T/emu.out" 2>"$T/emu.log" &
omni_track $!
for ((i = 0; i < 100; i++)); do
    grep -qs '^listening' "$T/emu.out" && break
    sleep 0.1
done
EMU=$(awk '/^listening/{print $2}' "$T/emu.out")
[ -n "$EMU" ] || fail "the Lambda emulator did not start"
export EMU
PYTHONPATH=tests/fakes /usr/bin/python3 - <<'PY' || { tail -n 40 "$T/emu.log"; exit 1; }
import json, os, urllib.request
from lambda_emu import invoke, split_prelude

port = int(os.environ["EMU"])
def check(c, m):
    if not c:
        print("FAIL: " + m)
        raise SystemExit(1)

def ev(stream):
    return {"version": "2.0", "rawPath": "/v1/chat/completions",
            "rawQueryString": "", "headers": {},
            "requestContext": {"domainName": "x.lambda-url.us-east-1.on.aws",
                               "http": {"method": "POST"}},
            "body": json.dumps({"model": "openai/gpt-4o-mini",
                                "stream": stream, "messages": [
                                    {"role": "user", "content": "zipped"}]})}

r = invoke(port, ev(False))
out = json.loads(r["body"])
check(out.get("statusCode") == 200, "buffered: %r" % r["body"][:300])
check("Echo: zipped" in out["body"], "buffered: %r" % out)
r = invoke(port, ev(True))
pre, rest = split_prelude(r["body"])
check(pre["statusCode"] == 200 and rest.endswith(b"data: [DONE]\n\n"),
      "streamed: %r" % r["body"][-200:])
r = invoke(port, {"service": "echo", "op": "echo", "body": {"a": 1}})
check(json.loads(r["body"]) == {"a": 1}, "echo: %r" % r["body"])
req = urllib.request.Request("http://127.0.0.1:%d/_emu/shutdown" % port,
                             data=b"", method="POST")
sd = json.load(urllib.request.urlopen(req, timeout=10))
check(sd["exits"].get("omni") == 0 and not sd["killed"], "shutdown %r" % sd)
print("ran the zips: buffered, streamed, echo, shutdown in %d ms" %
      sd["duration_ms"])
PY
grep -q "sk-t9000-key" "$T/emu.log" && fail "key in the logs"
echo ok
