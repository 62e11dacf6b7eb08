#!/usr/bin/env bash
# t0800-cli: every `omni` subcommand end to end against a real broker
# with the echo, llm (provider emulator), mcp (server-everything over
# stdio) and rag workers: outputs and exit status (0 done, 1 the request
# failed with "omni: CODE: message", 2 usage), a broker that is not
# running, and a stdout that cannot be written.  llm and mcp need node
# and node_modules, rag needs omni-rag: without them those parts are
# left out with a note.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../mcp/mcp_lib.sh"

have_node=0
command -v node >/dev/null && [ -f "$MCP_EVERYTHING" ] && have_node=1
have_rag=0
[ -x "$OMNI_BIN/omni-rag" ] && have_rag=1
svcs="echo"
[ $have_node = 1 ] && svcs=$svcs,llm,mcp
[ $have_rag = 1 ] && svcs=$svcs,rag
export OMNI_SERVICES=$svcs
omni_setup
[ $have_node = 1 ] || echo "note: no node or node_modules: llm and mcp left out"
[ $have_rag = 1 ] || echo "note: no $OMNI_BIN/omni-rag: rag left out"
OMNI=$OMNI_BIN/omni

# run ARGS...: run omni; stdout in $out, stderr in $err, status in $rc.
run() {
    "$OMNI" "$@" >"$OMNI_TEST_DIR/out" 2>"$OMNI_TEST_DIR/err"
    rc=$?
    out=$(cat "$OMNI_TEST_DIR/out")
    err=$(cat "$OMNI_TEST_DIR/err")
}

# want RC WHAT: fail unless the last run exited RC.
want() {
    [ "$rc" = "$1" ] ||
        fail "$2: exit $rc, want $1; stdout '$out'; stderr '$err'"
}

# want_err REGEX WHAT: the last run's stderr matches REGEX.
want_err() {
    echo "$err" | grep -qE "$1" || fail "$2: stderr '$err' lacks /$1/"
}

# want_out REGEX WHAT: the last run's stdout matches REGEX.
want_out() {
    echo "$out" | grep -qE "$1" || fail "$2: stdout '$out' lacks /$1/"
}

py() {
    /usr/bin/python3 -c "import json, sys
j = json.load(sys.stdin)
$1"
}

# ---- usage errors: exit 2, nothing sent (no broker needed yet)

run
want 2 "no command"
want_err '^usage: omni \[-s SOCKET\] COMMAND' "no command"
run --help
want 0 "--help"
want_out '^usage: omni' "--help"
want_out 'rag query COLLECTION TEXT' "--help"
run -h
want 0 "-h"
run bogus
want 2 "unknown command"
want_err "^omni: unknown command 'bogus' \(see omni --help\)$" "unknown command"
run --bogus ping
want 2 "unknown global option"
want_err "^omni: unknown option '--bogus'" "unknown global option"
run -s
want 2 "-s without a value"
want_err "^omni: option '-s' needs a value" "-s without a value"
run ping extra
want 2 "ping with an argument"
want_err "^omni: unexpected argument 'extra'" "ping with an argument"
want_err '^usage: omni ping \[-w SECS\]' "ping with an argument"
run ping -w soon
want 2 "ping -w soon"
want_err "^omni: bad value 'soon' for -w: want a number in \[0, 86400\]" \
    "ping -w soon"
run ping -w 86401
want 2 "ping -w too large"
run ping -w
want 2 "ping -w without a value"
want_err "^omni: option '-w' needs a value" "ping -w without a value"
run stats now
want 2 "stats with an argument"
run call echo echo
want 2 "call with two arguments"
want_err '^usage: omni call SERVICE OP JSON' "call with two arguments"
run call echo echo '{}' extra
want 2 "call with four arguments"
run call echo echo '{}' --timeout -5
want 2 "call --timeout -5"
run call echo echo '{}' --frob
want 2 "call --frob"
want_err "^omni: unknown option '--frob'" "call --frob"
run chat
want 2 "chat without a prompt"
run embed -m x
want 2 "embed without text"
run models all
want 2 "models with an argument"
run mcp
want 2 "mcp without a subcommand"
want_err '^usage: omni mcp tools' "mcp without a subcommand"
run mcp frob
want 2 "mcp frob"
run mcp tools extra
want 2 "mcp tools with an argument"
run mcp call
want 2 "mcp call without a name"
run rag
want 2 "rag without a subcommand"
want_err '^usage: omni rag ingest' "rag without a subcommand"
run rag ingest kb
want 2 "rag ingest without files"
run rag query kb
want 2 "rag query without text"
run rag query kb text -k 0
want 2 "rag query -k 0"
want_err "^omni: bad value '0' for -k" "rag query -k 0"
run rag query kb text --mode fuzzy
want 2 "rag query --mode fuzzy"
want_err "^omni: bad --mode 'fuzzy': want hybrid, bm25 or vector" \
    "rag query --mode fuzzy"

# ---- no broker: exit 1 with a clear message, for every kind of command

for cmd in "ping" "stats" "call echo echo {}" "models" "mcp tools" \
    "rag query kb text"; do
    # shellcheck disable=SC2086
    run $cmd
    want 1 "'$cmd' without a broker"
    want_err "^omni: cannot connect to '$OMNI_SOCKET': No such file or directory \(is omni-broker running\?\)$" \
        "'$cmd' without a broker"
done
t0=$(date +%s%N)
run ping -w 1
want 1 "ping -w 1 without a broker"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -ge 900 ] || fail "ping -w 1 gave up after $ms ms, want about 1 s"
run -s "$OMNI_TEST_DIR/elsewhere.sock" ping
want 1 "ping -s to a missing socket"
want_err "cannot connect to '$OMNI_TEST_DIR/elsewhere.sock'" \
    "ping -s to a missing socket"

# ---- start the services

if [ $have_node = 1 ]; then
    omni_start_fake
    export OPENAI_API_KEY=sk-test
    cat >"$OMNI_TEST_DIR/mcp.json" <<JSON
{"mcpServers": {
  "everything": {"command": "node", "args": ["$MCP_EVERYTHING", "stdio"]}}}
JSON
    export OMNI_MCP_CONFIG=$OMNI_TEST_DIR/mcp.json
fi
omni_start_broker
# ping -w waits for the services to come up.
run ping -w 60
want 0 "ping -w 60 while starting"
[ "$out" = ready ] || fail "ping: got '$out', want 'ready'"
run -s "$OMNI_SOCKET" ping
want 0 "ping -s"
run --socket "$OMNI_SOCKET" ping
want 0 "ping --socket"

# ---- stats

run stats
want 0 "stats"
echo "$out" | py 'assert j["services"]["echo"]["ready"] >= 1, j' ||
    fail "stats: echo not ready in '$out'"
[ "$(echo "$out" | head -n 1)" = "{" ] || fail "stats: not indented: '$out'"

# ---- call

run call echo echo '{"hi":[1,2]}'
want 0 "call echo"
[ "$out" = '{"hi":[1,2]}' ] || fail "call echo: got '$out'"
run call --idempotent echo echo '{"x":1}' --timeout 5000
want 0 "call --idempotent --timeout"
[ "$out" = '{"x":1}' ] || fail "call --idempotent: got '$out'"
run call echo echo -- -x
want 0 "call with -- before a body starting with -"
[ "$out" = '-x' ] || fail "call -- -x: got '$out'"
out=$(echo '{"from":"stdin"}' | "$OMNI" call echo echo -) ||
    fail "call with the body on stdin failed"
[ "$out" = '{"from":"stdin"}' ] || fail "call -: got '$out'"
# A body larger than the first read buffer.
/usr/bin/python3 -c 'import json; print(json.dumps({"k": "v" * 100000}))' \
    >"$OMNI_TEST_DIR/big.json"
"$OMNI" call echo echo - <"$OMNI_TEST_DIR/big.json" >"$OMNI_TEST_DIR/big.out" ||
    fail "call with a 100 kB body on stdin failed"
cmp -s "$OMNI_TEST_DIR/big.json" "$OMNI_TEST_DIR/big.out" ||
    fail "call -: the 100 kB body did not come back intact"
run call echo stream '{"chunks":3,"size":4}' --stream
want 0 "call --stream"
[ "$out" = $'0\n..1\n..2\n..{"chunks":3}' ] ||
    fail "call --stream: got '$out'"
run call echo sub '{"svc":"echo","op":"echo","body":{"via":"sub"}}'
want 0 "call echo sub"
[ "$out" = '{"via":"sub"}' ] || fail "call echo sub: got '$out'"

# Error events: "omni: CODE: message", exit 1.
run call echo fail '{"code":"UPSTREAM","status":529,"message":"boom"}'
want 1 "call echo fail"
[ "$err" = "omni: UPSTREAM: boom" ] || fail "call echo fail: stderr '$err'"
[ -z "$out" ] || fail "call echo fail: stdout '$out'"
run call echo sub '{"svc":"nope","op":"x"}'
want 1 "sub to a missing service"
want_err "^omni: NO_SERVICE: .*'nope'" "sub to a missing service"
run call nope op '{}'
want 1 "call a missing service"
want_err "^omni: NO_SERVICE: .*'nope'" "call a missing service"
run call echo frobnicate '{}'
want 1 "call an unknown op"
want_err "^omni: UNSUPPORTED: .*'frobnicate'" "call an unknown op"
run call echo sleep '{"ms":'
want 1 "call with a broken JSON body"
want_err "^omni: BAD_REQUEST: .*not valid JSON" "call with broken JSON"
t0=$(date +%s%N)
run call echo sleep '{"ms":5000}' --timeout 300
want 1 "call past its timeout"
want_err "^omni: TIMEOUT: " "call past its timeout"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 3000 ] || fail "call --timeout 300 took $ms ms"
run call echo stream '{"chunks":2}' --stream --timeout 99999999999
want 2 "call --timeout over 32 bits"

# A stdout that cannot be written is an error, after the request.
"$OMNI" call echo echo '{}' >/dev/full 2>"$OMNI_TEST_DIR/err"
rc=$?
err=$(cat "$OMNI_TEST_DIR/err")
want 1 "call to a full stdout"
want_err "^omni: cannot write the output$" "call to a full stdout"

# ---- llm: chat, embed, models

if [ $have_node = 1 ]; then
    run chat -m openai/gpt-4o-mini hello there
    want 0 "chat (streamed)"
    [ "$out" = "Echo: hello there" ] || fail "chat: got '$out'"
    run chat --no-stream -m openai/gpt-4o-mini hello again
    want 0 "chat --no-stream"
    [ "$out" = "Echo: hello again" ] || fail "chat --no-stream: got '$out'"
    out=$(OMNI_DEFAULT_MODEL=openai/gpt-4o "$OMNI" chat from the env) ||
        fail "chat with OMNI_DEFAULT_MODEL failed"
    [ "$out" = "Echo: from the env" ] || fail "chat default model: '$out'"
    run chat -m openai/nonexistent-model hi
    want 1 "chat with a model the provider lacks"
    want_err '^omni: UPSTREAM: openai: The model .nonexistent-model. does not exist' \
        "chat with a missing model"
    run chat --no-stream -m openai/nonexistent-model hi
    want 1 "chat --no-stream with a missing model"
    want_err '^omni: UPSTREAM: openai: ' "chat --no-stream, missing model"
    run chat -m nowhere/model hi
    want 1 "chat with an unknown provider"
    want_err "^omni: NOT_FOUND: unknown provider 'nowhere'" \
        "chat with an unknown provider"
    run chat -m openai/gpt-4o-mini $'\xff\xfe'
    want 1 "chat with a prompt that is not UTF-8"
    want_err '^omni: the prompt is not valid UTF-8$' "chat non-UTF-8"

    run embed -m openai/text-embedding-3-small hello world
    want 0 "embed"
    [ "$(echo "$out" | wc -l)" = 2 ] || fail "embed: want 2 lines: '$out'"
    want_out '^0: 8 dims \[[-0-9.e]+, .*\]$' "embed"
    want_out '^1: 8 dims \[' "embed"
    run embed --json -m openai/text-embedding-3-small hello
    want 0 "embed --json"
    echo "$out" | py 'assert len(j["data"][0]["embedding"]) == 8, j' ||
        fail "embed --json: '$out'"
    run embed -m openai/text-embedding-3-small $'\xff'
    want 1 "embed text that is not UTF-8"
    want_err '^omni: text 1 is not valid UTF-8$' "embed non-UTF-8"
    run embed -m openai/nonexistent-embedder hello
    want 1 "embed with a missing model"
    want_err '^omni: UPSTREAM: openai: The model .nonexistent-embedder.' \
        "embed with a missing model"

    run models
    want 0 "models"
    want_out '^openai/gpt-4o-mini$' "models"
    echo "$out" | grep -vqE '^[a-z]+/' && fail "models: odd line in '$out'"
fi

# ---- mcp: tools, call, isError

if [ $have_node = 1 ]; then
    mcp_wait_tools 30 everything__echo everything__get-sum ||
        fail "server-everything tools are not listed"
    run mcp tools
    want 0 "mcp tools"
    want_out '^everything__echo +[A-Z]' "mcp tools"
    want_out '^everything__get-sum +' "mcp tools"
    run mcp tools --json
    want 0 "mcp tools --json"
    echo "$out" | py 'assert any(t["name"] == "everything__echo" for t in j["tools"]), j' ||
        fail "mcp tools --json: '$out'"
    run mcp call everything__echo '{"message":"hi"}'
    want 0 "mcp call"
    echo "$out" | py 'assert j["content"][0]["text"] == "Echo: hi", j
assert j["isError"] is False, j' || fail "mcp call: '$out'"
    run mcp call everything__get-sum '{"a":19,"b":23}'
    want 0 "mcp call get-sum"
    want_out '42' "mcp call get-sum"
    # No arguments: {} is sent; the server refuses the missing field as
    # the tool's failure: the result is printed, isError, exit 1.
    run mcp call everything__echo
    want 1 "mcp call without the required argument"
    echo "$out" | py 'assert j["isError"] is True, j
assert "message" in j["content"][0]["text"], j' ||
        fail "mcp call without arguments: '$out'"
    run mcp call everything__echo 'not json'
    want 1 "mcp call with arguments that are not JSON"
    want_err '^omni: arguments are not JSON: ' "mcp call, bad JSON"
    run mcp call everything__nope '{}'
    want 1 "mcp call of a missing tool"
    want_err '^omni: NOT_FOUND: ' "mcp call of a missing tool"
fi

# ---- rag: ingest text, PDF and unreadable files; query

if [ $have_rag = 1 ]; then
    d=$OMNI_TEST_DIR/docs
    mkdir -p "$d"
    printf 'Cats purr when content.\nA cat sleeps sixteen hours a day.\n' \
        >"$d/cats.txt"
    printf '# Rockets\n\nRockets burn fuel to reach orbit. %s\n' \
        "$(printf 'Boosters land on barges again and again. %.0s' {1..5})" \
        >"$d/rockets.md"
    /usr/bin/python3 - "$d/photo.pdf" <<'PY'
import sys
text = "Photosynthesis turns light into chemical energy."
content = "BT /F1 12 Tf 20 50 Td (%s) Tj ET" % text
objs = ["<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] "
        "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        "<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
out = b"%PDF-1.4\n"
offs = []
for n, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n%s\nendobj\n" % (n, o.encode())
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
    len(objs) + 1, xref)
open(sys.argv[1], "wb").write(out)
PY
    head -c 3000 /dev/urandom >"$d/noise.docx"
    run rag ingest kb "$d/cats.txt" "$d/rockets.md" "$d/photo.pdf"
    want 0 "rag ingest of three files"
    want_err "^ingested '$d/cats.txt' as 'cats.txt'$" "rag ingest"
    want_err "^ingested '$d/photo.pdf' as 'photo.pdf'$" "rag ingest"
    want_err "^3 of 3 files ingested into 'kb'$" "rag ingest"
    run rag ingest kb "$d/cats.txt"
    want 0 "rag ingest again"
    want_err "^unchanged '$d/cats.txt' as 'cats.txt'$" "rag ingest again"
    # One file missing, one the worker cannot read: the rest still go.
    run rag ingest kb "$d/missing.txt" "$d/noise.docx" "$d/rockets.md"
    want 1 "rag ingest with bad files"
    want_err "^omni: cannot read '$d/missing.txt': No such file or directory$" \
        "rag ingest of a missing file"
    want_err "^omni: BAD_REQUEST: document 'noise.docx': unsupported content type 'application/vnd.openxmlformats" \
        "rag ingest of a document the worker cannot read"
    want_err "^1 of 3 files ingested into 'kb'$" "rag ingest with bad files"
    # On a terminal the progress is a bar redrawn in place.
    script -qec "'$OMNI' rag ingest kb '$d/cats.txt'" /dev/null \
        >"$OMNI_TEST_DIR/tty.out" 2>&1 || fail "rag ingest on a tty failed"
    grep -q '\[#\{30\}\] 1/1' "$OMNI_TEST_DIR/tty.out" ||
        fail "rag ingest on a tty: no bar in '$(cat "$OMNI_TEST_DIR/tty.out")'"

    run rag query kb "how long does a cat sleep" -k 2
    want 0 "rag query"
    want_out '^ 1\. [0-9.]+  cats\.txt  Cats purr when content\. A cat sleeps' \
        "rag query"
    [ "$(echo "$out" | wc -l)" -le 2 ] || fail "rag query -k 2: '$out'"
    run rag query kb "boosters barges" --mode bm25 -k 1
    want 0 "rag query --mode bm25"
    want_out '^ 1\. [0-9.]+  rockets\.md  # Rockets Rockets burn' "bm25 query"
    want_out '\.\.\.$' "bm25 query: a long chunk is cut"
    run rag query kb "light chemical energy" --json --mode hybrid
    want 0 "rag query --json"
    echo "$out" | py 'assert j["results"][0]["document_id"] == "photo.pdf", j' ||
        fail "rag query --json: '$out'"
    # Not UTF-8: sent as base64 with the type from the name, refused.
    printf 'caf\xe9 <b>bold</b>' >"$d/latin.htm"
    run rag ingest kb "$d/latin.htm"
    want 1 "rag ingest of a Latin-1 page"
    want_err "^omni: BAD_REQUEST: document 'latin.htm' is binary, not UTF-8" \
        "rag ingest of a Latin-1 page"
    run rag query nokb "anything"
    want 1 "rag query of a missing collection"
    want_err "^omni: NOT_FOUND: collection 'nokb' not found$" \
        "rag query of a missing collection"
fi

# ---- broker gone: a clear error, exit 1

omni_stop || fail "broker did not drain cleanly"
run stats
want 1 "stats after the broker stopped"
want_err "^omni: cannot connect to '$OMNI_SOCKET': .*\(is omni-broker running\?\)$" \
    "stats after the broker stopped"
omni_check_log
grep -E 'killed by signal' "$OMNI_BROKER_LOG" &&
    fail "a worker was killed by a signal"
echo ok
