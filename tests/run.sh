#!/usr/bin/env bash
# run.sh - the one test runner behind `make test`.
#
#   tests/run.sh unit|integration|all BUILD_TOP
#
# Unit tests: every CUnit program in BUILD_TOP/tests (under valgrind when
# VALGRIND=1).  Integration tests: every tests/integration/tNNNN-*.sh,
# run with OMNI_BUILD=BUILD_TOP; exit 0 = pass, 77 = skip, else fail.
# Ends with one line "N passed, N failed, N skipped".
set -u
what=${1:-all}
top=${2:-build}
cd "$(dirname "$0")/.." || exit 2
pass=0 fail=0 skip=0 failed=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/omni-test.XXXXXX")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export OMNI_BUILD=$top

run_one() {  # name, command...
    local name=$1; shift
    local log="$logdir/${name//\//_}.log"
    local t0=${EPOCHREALTIME/./}
    "$@" >"$log" 2>&1
    local rc=$?
    local us=$(( ${EPOCHREALTIME/./} - t0 ))
    local dt="$((us / 1000000)).$(( (us / 100000) % 10 ))"
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "ok    $name (${dt}s)"
    elif [ $rc -eq 77 ]; then
        skip=$((skip + 1)); echo "skip  $name: $(tail -n 1 "$log")"
    else
        fail=$((fail + 1)); failed+=("$name"); echo "FAIL  $name (rc=$rc)"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
}

if [ "$what" = unit ] || [ "$what" = all ]; then
    for t in "$top"/tests/test_*; do
        [ -x "$t" ] || continue
        if [ "${VALGRIND:-}" = 1 ]; then
            run_one "unit/$(basename "$t")" valgrind -q --leak-check=full \
                --errors-for-leak-kinds=definite --error-exitcode=1 "$t"
        else
            run_one "unit/$(basename "$t")" "$t"
        fi
    done
fi

if [ "$what" = integration ] || [ "$what" = all ]; then
    for t in tests/integration/t[0-9]*.sh; do
        [ -f "$t" ] || continue
        if [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]]; then continue; fi
        run_one "$(basename "$t" .sh)" timeout 600 bash "$t"
    done
fi

echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]} (logs in $logdir)"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
