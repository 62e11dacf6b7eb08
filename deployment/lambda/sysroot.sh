#!/usr/bin/env bash
# sysroot.sh - the arm64 libraries and headers the Lambda cross build
# links against, unpacked from Debian's arm64 packages into
# build/lambda/sysroot-arm64 (nothing is installed on the system).
#
#   deployment/lambda/sysroot.sh [SYSROOT]
#
# Why a sysroot and not multiarch -dev packages: libevent-dev and
# libjemalloc-dev are not Multi-Arch: same, so installing their :arm64
# versions removes the amd64 ones the host build needs.  Here `apt-get
# download` fetches the .debs (the arm64 architecture is added to dpkg
# for the package lists only) and dpkg-deb -x unpacks them.  Absolute
# symlinks are made relative to the sysroot; pkg-config modules that
# only appear as private requirements get stub .pc files, since we link
# dynamically and need none of their flags.  Idempotent: a stamp holding
# the package list and versions skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${1:-build/lambda/sysroot-arm64}
debs=build/lambda/debs-arm64
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# -dev packages of what the Makefile links (headers, .so links, .pc).
DEV=(libzmq3-dev libmsgpack-dev libcurl4-openssl-dev libhiredis-dev
     libjansson-dev libevent-dev libmicrohttpd-dev libjemalloc-dev
     libcunit1-dev libssl-dev
     libpoppler-glib-dev libpoppler-dev libglib2.0-dev libcairo2-dev
     libstemmer-dev libyaml-dev)
# Their runtime libraries; the closure of their dependencies is what the
# zips bundle from (libc6 and the loader included).
RUNTIME=(libzmq5 libmsgpackc2 libcurl4 libhiredis0.14 libjansson4
         libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7
         libevent-pthreads-2.1-7 libevent-openssl-2.1-7 libmicrohttpd12
         libjemalloc2 libcunit1 libssl3 libc6 libgcc-s1 libstdc++6
         libpoppler-glib8 libstemmer0d libyaml-0-2)

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq
elif ! apt-cache show libc6:arm64 >/dev/null 2>&1; then
    $SUDO apt-get update -qq
fi

# The runtime closure: arm64 packages only, first alternatives only.
closure=$(apt-cache depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances \
    "${RUNTIME[@]/%/:arm64}" 2>/dev/null |
    grep -E '^[a-z0-9]' | grep ':arm64$' | sort -u)
pkgs=$(printf '%s\n' $closure "${DEV[@]/%/:arm64}" | sort -u)
want=$(apt-cache policy $pkgs 2>/dev/null |
    awk '/^[a-z0-9]/{p=$1; sub(/:$/, "", p)} /Candidate:/{print p, $2}' | sort)
if [ -f "$root/.stamp" ] && [ "$(cat "$root/.stamp")" = "$want" ]; then
    exit 0
fi

mkdir -p "$debs"
(cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root $pkgs)
rm -rf "$root.tmp"
mkdir -p "$root.tmp"
for p in $pkgs; do
    name=${p%:arm64}
    ver=$(awk -v p="$p" '$1 == p {print $2}' <<<"$want")
    ver=${ver//:/%3a}
    deb=
    for f in "$debs/${name}_${ver}_"{arm64,all}.deb; do
        [ -f "$f" ] && deb=$f
    done
    [ -n "$deb" ] || { echo "sysroot: no .deb for $p $ver" >&2; exit 1; }
    dpkg-deb -x "$deb" "$root.tmp"
done

# Absolute symlinks (libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1)
# would point into the build machine: make them relative.
find "$root.tmp" -type l | while read -r l; do
    t=$(readlink "$l")
    case "$t" in
    /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" \
        "$root.tmp$t")" "$l" ;;
    esac
done

# Stub .pc files for modules named by Requires(.private) and not here.
pcdir=$root.tmp/usr/lib/aarch64-linux-gnu/pkgconfig
stubs=$root.tmp/stub-pkgconfig
mkdir -p "$stubs"
for _ in 1 2 3; do
    for m in $(sed -n 's/^Requires[^:]*://p' "$pcdir"/*.pc \
        "$stubs"/*.pc 2>/dev/null | tr ',' ' ' |
        grep -oE '[A-Za-z][A-Za-z0-9_.+-]*' | sort -u); do
        [ -f "$pcdir/$m.pc" ] || [ -f "$stubs/$m.pc" ] ||
            [ -f "$root.tmp/usr/share/pkgconfig/$m.pc" ] ||
            printf 'Name: %s\nDescription: stub for the Lambda cross build\nVersion: 999\n' \
                "$m" >"$stubs/$m.pc"
    done
done

printf '%s\n' "$want" >"$root.tmp/.stamp"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "sysroot: $(wc -l <<<"$want") packages in $root"
