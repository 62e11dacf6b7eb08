# lambda_lib.sh - helpers for the Lambda tests (t6xxx), on top of lib.sh.
#
#   . "$(dirname "$0")/lambda_lib.sh"
#   lambda_setup                 lib.sh's omni_setup, the provider emulator
#                                ($FAKE, OPENAI_*), and the layer and task
#                                layout simulated in $OMNI_TEST_DIR/{opt,task}
#   lambda_start_emu [ARGS]      tests/fakes/lambda_emu.py (port in $EMU)
#   lambda_py                    python3 with lambda_emu and omnitest
#   lambda_check_logs            fail on sanitizer reports in any log
#
# The layout is what /opt and /var/task hold in Lambda, with the host
# build's binaries (symlinks): opt/extensions/omni, opt/bin/omni-*,
# task/bootstrap.  Logs of the emulator and everything it starts go to
# $OMNI_TEST_DIR/emu.log (shown when a test fails).
. "$(dirname "$0")/lib.sh"

export PYTHONDONTWRITEBYTECODE=1
EMU=
EMU_LOG=

_lambda_dump() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$EMU_LOG" ] &&
        [ -f "$EMU_LOG" ]; then
        echo "--- emu.log (last 80 lines)" >&2
        tail -n 80 "$EMU_LOG" >&2
    fi
    # The emulator's own shutdown first (SIGTERM to bootstrap, SHUTDOWN
    # to the extension): the processes exit normally and write their
    # coverage data; lib.sh's SIGKILL only finds what did not.
    lambda_stop_emu
    if [ "$rc" -eq 0 ] && [ -n "$EMU_LOG" ] && _omni_exit_reports "$EMU_LOG"
    then
        echo "FAIL: sanitizer report in emu.log at exit"
        rc=1
    fi
    (exit "$rc")
    _omni_cleanup
}

lambda_setup() {
    command -v node >/dev/null || skip "node is not installed"
    [ -x "$OMNI_BIN/bootstrap" ] || fail "no $OMNI_BIN/bootstrap"
    [ -x "$OMNI_BIN/omni-extension" ] || fail "no $OMNI_BIN/omni-extension"
    export OMNI_SERVICES=${OMNI_SERVICES:-llm}
    omni_setup
    trap _lambda_dump EXIT
    EMU_LOG=$OMNI_TEST_DIR/emu.log
    local d=$OMNI_TEST_DIR
    mkdir -p "$d/opt/extensions" "$d/opt/bin" "$d/task"
    local top
    top=$(cd "$OMNI_BIN" && pwd)
    ln -s "$top/omni-extension" "$d/opt/extensions/omni"
    for b in "$top"/omni-*; do
        ln -s "$b" "$d/opt/bin/$(basename "$b")"
    done
    ln -s "$top/bootstrap" "$d/task/bootstrap"
    export OMNI_WORKER_DIR=$d/opt/bin

    omni_start_fake
    export OPENAI_API_KEY=${OPENAI_API_KEY:-sk-test-lambda-0123456789}
}

lambda_start_emu() {
    # A stale emu.out (an earlier emulator's "listening") must not be
    # read before the new emulator truncates it.
    rm -f "$OMNI_TEST_DIR/emu.out"
    /usr/bin/python3 tests/fakes/lambda_emu.py --opt "$OMNI_TEST_DIR/opt" \
        --task "$OMNI_TEST_DIR/task" --port 0 "$@" >"$OMNI_TEST_DIR/emu.out" \
        2>>"$EMU_LOG" &
    omni_track $!
    EMU_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        grep -qs '^listening' "$OMNI_TEST_DIR/emu.out" && break
        sleep 0.1
    done
    EMU=$(awk '/^listening/{print $2}' "$OMNI_TEST_DIR/emu.out")
    [ -n "$EMU" ] || fail "the Lambda emulator did not start"
    export EMU
}

# Stop the emulator (it shuts the environment down first) and wait.
lambda_stop_emu() {
    [ -n "${EMU_PID:-}" ] || return 0
    kill -TERM "$EMU_PID" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$EMU_PID" 2>/dev/null || break
        sleep 0.1
    done
    EMU_PID=
}

lambda_py() {
    PYTHONPATH=$OMNI_TEST_DIR:$PWD/tests/fakes /usr/bin/python3 "$@"
}

lambda_check_logs() {
    if grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$EMU_LOG" >&2; then
        fail "sanitizer report in the logs"
    fi
}
