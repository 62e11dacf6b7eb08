#!/usr/bin/env bash
# install-deps.sh - install what building, running and testing Omni needs
# on Debian 12: the C libraries (-dev packages), the test servers
# (redis-server, nginx for benchmarks), lint and coverage tools, and the
# Node test peers pinned by package-lock.json (npm ci).
#
#   deployment/install-deps.sh            everything
#   deployment/install-deps.sh --no-npm   Debian packages only
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

PKGS=(
    build-essential pkg-config git ca-certificates
    libzmq3-dev libmsgpack-dev libcurl4-openssl-dev libhiredis-dev
    libjemalloc-dev libcunit1-dev libjansson-dev libevent-dev
    libmicrohttpd-dev libssl-dev libpoppler-glib-dev libstemmer-dev
    libyaml-dev python3-yaml
    redis-server nginx-light python3 python3-msgpack curl
    clang libclang-rt-14-dev clang-format clang-tidy cppcheck valgrind
    gcovr zip unzip binutils file wrk libnginx-mod-http-echo
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
)

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The machine may carry its own Node.js (NodeSource's nodejs includes
# npm); Debian's npm package would conflict with it.
command -v node >/dev/null || PKGS+=(nodejs npm)
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null

if [ "${1:-}" != --no-npm ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
