#!/usr/bin/env bash
# run.sh - what `make bench` runs: every benchmark that needs nothing but
# this repository and Debian packages, one after the other, each printing
# its own figures next to the baseline it measured in the same run.
#
#   bench/run.sh [broker] [llm] [mcp] [lambda] [rag]     (default: all)
#
# The RAG quality figures need ../shared/datasets (skipped without it).
set -u
cd "$(dirname "$0")/.."
export OMNI_BUILD=${OMNI_BUILD:-build}
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(broker llm mcp lambda rag)
rc=0
for p in "${parts[@]}"; do
    printf '\n### %s\n' "$p"
    case "$p" in
    broker) bench/broker.sh || rc=1 ;;
    llm) bench/llm/run.sh || rc=1 ;;
    mcp) bench/mcp/run.sh || rc=1 ;;
    lambda) bench/lambda/coldstart.sh || rc=1 ;;
    rag)
        if [ -d ../shared/datasets ]; then
            "$OMNI_BUILD/bin/omni-rag-bench" scifact ../shared/datasets/beir-scifact &&
                "$OMNI_BUILD/bin/omni-rag-bench" sift ../shared/datasets/siftsmall || rc=1
        else
            echo "skip: ../shared/datasets is absent"
        fi
        ;;
    *) echo "unknown part '$p'" >&2; rc=2 ;;
    esac
done
exit $rc
