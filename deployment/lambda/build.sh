#!/usr/bin/env bash
# build.sh - build Omni for AWS Lambda (provided.al2023) and package it.
#
#   deployment/lambda/build.sh package arm64|x86_64   (make lambda ARCH=...)
#   deployment/lambda/build.sh test    arm64|x86_64   (make lambda-test ARCH=...)
#
# Release objects go to build/lambda-obj/ARCH through the top Makefile
# (arm64: CC=aarch64-linux-gnu-gcc against deployment/lambda/sysroot.sh's
# sysroot).  package writes build/lambda/ARCH/function.zip and layer.zip:
#
#   function.zip  bootstrap            script: runs libexec/bootstrap
#                 libexec/bootstrap    the runtime (ELF)
#                 lib/                 its libraries, glibc and loader
#   layer.zip     extensions/omni      script: runs libexec/omni/omni-extension
#                 bin/omni-*           scripts: run libexec/omni/omni-*
#                 libexec/omni/        the ELF programs
#                 lib/                 their libraries, glibc and loader
#
# Why the bundled loader: Debian 12 builds need GLIBC_2.35+ (measured:
# arc4random_uniform@GLIBC_2.36 in the worker runtime, libevent and
# libstdc++ need 2.36) and provided.al2023 has glibc 2.34.  So, like
# aws-lambda-cpp's packager, every program runs through the bundled
# ld-linux with --library-path, which also keeps Lambda's LD_LIBRARY_PATH
# (/lib64 first) away from our libc.  The measurement is printed on every
# build and tests/integration/t9000-lambda-package.sh checks the result.
#
# test builds the CUnit programs for ARCH and runs them (arm64 under
# qemu-aarch64 with the sysroot as its prefix, QEMU_LD_PREFIX).
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-}
arch=${2:-}
die() {
    echo "lambda: $*" >&2
    exit 1
}
case "$arch" in
arm64 | aarch64) arch=arm64 triple=aarch64-linux-gnu ldso=ld-linux-aarch64.so.1 ;;
x86_64 | amd64) arch=x86_64 triple=x86_64-linux-gnu ldso=ld-linux-x86-64.so.2 ;;
*) die "unknown ARCH '$arch': want arm64 or x86_64" ;;
esac
case "$what" in
package | test) ;;
*) die "usage: $0 package|test arm64|x86_64" ;;
esac

REQUIRED=(bootstrap omni-extension omni-broker omni-llm omni-echo)
OPTIONAL=(omni-mcp omni-rag omni)
# LAMBDA_WITHOUT="omni-rag ..." leaves programs out (omni-rag brings
# poppler, cairo and glib: about 8 MB of the zipped layer).
for p in ${LAMBDA_WITHOUT:-}; do
    OPTIONAL=("${OPTIONAL[@]/#$p/}")
done
obj=build/lambda-obj/$arch
out=build/lambda/$arch
mk=(make --no-print-directory -j"$(nproc)" BUILD="$obj" MALLOC=jemalloc)
hostarch=$(uname -m)
[ "$hostarch" = aarch64 ] && hostarch=arm64

if [ "$arch" = "$hostarch" ]; then
    search=("/lib/$triple" "/usr/lib/$triple")
    strip=strip
    qemu=()
    export LDFLAGS="-Wl,--as-needed"
else
    [ "$arch" = arm64 ] || die "cross builds are for arm64 only"
    command -v "$triple-gcc" >/dev/null ||
        die "missing '$triple-gcc': apt-get install gcc-aarch64-linux-gnu"
    deployment/lambda/sysroot.sh
    S=$PWD/build/lambda/sysroot-arm64
    search=("$S/lib/$triple" "$S/usr/lib/$triple")
    strip=$triple-strip
    qemu=(qemu-aarch64)
    # qemu-user runs one guest program; tests that exec others skip.
    export OMNI_TEST_NO_SPAWN=1
    # The sysroot is the guest's /: its loader, glibc and libraries (and
    # those of programs the tests exec, which qemu runs too).
    export QEMU_LD_PREFIX=$S
    export PKG_CONFIG_SYSROOT_DIR=$S
    export PKG_CONFIG_LIBDIR=$S/usr/lib/$triple/pkgconfig:$S/usr/share/pkgconfig:$S/stub-pkgconfig
    # -isystem: warnings inside library macros (CUnit's) stay quiet, as
    # they do for /usr/include in the host build.
    export CFLAGS="-O2 -g -isystem $S/usr/include -isystem $S/usr/include/$triple"
    export LDFLAGS="-L$S/lib/$triple -L$S/usr/lib/$triple -Wl,-rpath-link,$S/lib/$triple:$S/usr/lib/$triple -Wl,--as-needed"
    mk+=(CC="$triple-gcc")
fi

# ------------------------------------------------------------------ test
if [ "$what" = test ]; then
    pass=0 failed=() broken=()
    for src in tests/unit/test_*.c; do
        t=$(basename "$src" .c)
        if ! "${mk[@]}" "$obj/tests/$t" >"$obj.$t.log" 2>&1; then
            broken+=("$t")
            continue
        fi
        rm -f "$obj.$t.log"
        if (cd tests && "${qemu[@]}" "../$obj/tests/$t") >"$obj.$t.out" 2>&1; then
            pass=$((pass + 1))
            echo "ok    $arch/$t"
            rm -f "$obj.$t.out"
        else
            failed+=("$t")
            echo "FAIL  $arch/$t"
            tail -n 20 "$obj.$t.out" | sed 's/^/    | /'
        fi
    done
    [ ${#broken[@]} -eq 0 ] || echo "not built: ${broken[*]} (see $obj.TEST.log)"
    echo "$pass passed, ${#failed[@]} failed"
    [ ${#failed[@]} -eq 0 ] && [ ${#broken[@]} -eq 0 ]
    exit
fi

# --------------------------------------------------------------- package
progs=()
for p in "${REQUIRED[@]}"; do
    "${mk[@]}" "$obj/bin/$p" || die "cannot build '$p' for $arch"
    progs+=("$p")
done
for p in "${OPTIONAL[@]}"; do
    [ -n "$p" ] || continue
    if "${mk[@]}" "$obj/bin/$p" >"$obj.$p.log" 2>&1; then
        progs+=("$p")
        rm -f "$obj.$p.log"
    else
        echo "lambda: warning: '$p' does not build for $arch; left out" \
            "(see $obj.$p.log)" >&2
    fi
done

stage=$out/stage
rm -rf "$out"
mkdir -p "$stage/fn/libexec" "$stage/fn/lib" "$stage/layer/extensions" \
    "$stage/layer/bin" "$stage/layer/libexec/omni" "$stage/layer/lib"

# The soname's file in the search path, or nothing.
find_lib() {
    local d
    for d in "${search[@]}"; do
        if [ -e "$d/$1" ]; then
            readlink -f "$d/$1"
            return
        fi
    done
}

# Copy into libdir every library the ELF files given need, recursively,
# the loader included.
bundle() {
    local libdir=$1 f n p
    shift
    local queue=("$@")
    while [ ${#queue[@]} -gt 0 ]; do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            [ -e "$libdir/$n" ] && continue
            p=$(find_lib "$n")
            [ -n "$p" ] || die "no library '$n' (needed by $f) for $arch"
            cp "$p" "$libdir/$n"
            chmod 0755 "$libdir/$n"
            queue+=("$libdir/$n")
        done
    done
    [ -e "$libdir/$ldso" ] || cp "$(find_lib "$ldso")" "$libdir/$ldso"
}

# A script that runs an ELF of the zip through the bundled loader; $1 is
# the path from the script's directory to the zip root.
launcher() {  # file up elf [extra line]
    cat >"$1" <<EOF
#!/bin/sh
# Runs $3 with the glibc and libraries bundled in lib/
# (built on Debian 12; provided.al2023's glibc 2.34 is too old for it).
case \$0 in */*) r=\${0%/*}$2 ;; *) r=.$2 ;; esac
${4:-}exec "\$r/lib/$ldso" --library-path "\$r/lib" "\$r/$3" "\$@"
EOF
    chmod 0755 "$1"
}

for p in "${progs[@]}"; do
    if [ "$p" = bootstrap ]; then
        $strip --strip-unneeded -o "$stage/fn/libexec/bootstrap" "$obj/bin/$p"
    else
        $strip --strip-unneeded -o "$stage/layer/libexec/omni/$p" "$obj/bin/$p"
    fi
done
bundle "$stage/fn/lib" "$stage/fn/libexec/bootstrap"
bundle "$stage/layer/lib" "$stage/layer/libexec/omni/"*
launcher "$stage/fn/bootstrap" "" libexec/bootstrap
launcher "$stage/layer/extensions/omni" /.. libexec/omni/omni-extension \
    ': "${OMNI_WORKER_DIR:=$r/bin}"; export OMNI_WORKER_DIR
'
for p in "${progs[@]}"; do
    case "$p" in
    bootstrap | omni-extension) ;;
    *) launcher "$stage/layer/bin/$p" /.. "libexec/omni/$p" ;;
    esac
done

# The measurement behind the layout: the newest glibc symbol version any
# shipped ELF needs (provided.al2023 has 2.34).
maxver=$(for f in "$stage"/fn/libexec/* "$stage"/layer/libexec/omni/* \
    "$stage"/fn/lib/* "$stage"/layer/lib/*; do
    readelf --dyn-syms -W "$f" 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*' || true
done | sort -uV | tail -n 1)
echo "lambda: $arch: newest glibc symbol version needed: $maxver" \
    "(provided.al2023: GLIBC_2.34) -> bundled loader and glibc"

(cd "$stage/fn" && rm -f ../../function.zip && zip -q -X -r ../../function.zip .)
(cd "$stage/layer" && rm -f ../../layer.zip && zip -q -X -r ../../layer.zip .)
for z in function layer; do
    printf 'lambda: %s/%s.zip: %s bytes zipped, %s unzipped\n' "$out" "$z" \
        "$(stat -c %s "$out/$z.zip")" \
        "$(du -sb "$stage/$([ $z = function ] && echo fn || echo layer)" | cut -f1)"
done
echo "lambda: $arch programs: ${progs[*]}"
