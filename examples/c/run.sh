#!/usr/bin/env bash
# Builds and runs the C demo (make demo). By default it uses the repository's header and the
# library built in .build/release; point DIFFATTN_INCLUDE / DIFFATTN_LIBDIR at an installed copy
# (e.g. DIFFATTN_INCLUDE=/usr/include DIFFATTN_LIBDIR=/usr/lib/x86_64-linux-gnu) to try that.
# Extra arguments go to the demo (the first one is the token count, default 4096).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
INCLUDE="${DIFFATTN_INCLUDE:-$ROOT/include}"
LIBDIR="${DIFFATTN_LIBDIR:-$ROOT/.build/release}"
CC="${CC:-gcc}"

if [ ! -f "$INCLUDE/diffattn.h" ]; then
    echo "examples/c: diffattn.h not found in $INCLUDE (set DIFFATTN_INCLUDE)" >&2
    exit 1
fi
if ! ls "$LIBDIR"/libdiffattn.so* >/dev/null 2>&1; then
    echo "examples/c: libdiffattn.so not found in $LIBDIR (build with: swift build -c release --product diffattn," \
         "or set DIFFATTN_LIBDIR)" >&2
    exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/diffattn-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The program records the SONAME libdiffattn.so.0. An installed library comes with that name;
# a build tree has only libdiffattn.so, so provide the SONAME link next to the binary.
RPATH="-Wl,-rpath,$LIBDIR"
if [ ! -e "$LIBDIR/libdiffattn.so.0" ]; then
    ln -s "$LIBDIR/libdiffattn.so" "$WORK/libdiffattn.so.0"
    RPATH="$RPATH -Wl,-rpath,$WORK"
fi
LINK="-L$LIBDIR"
[ -e "$LIBDIR/libdiffattn.so" ] || LINK="-L$WORK" # only the SONAME link installed
[ -e "$LIBDIR/libdiffattn.so" ] || ln -sf "$LIBDIR/libdiffattn.so.0" "$WORK/libdiffattn.so"

"$CC" -std=c99 -O2 -Wall -Wextra -pedantic -I"$INCLUDE" "$HERE/demo.c" -o "$WORK/demo" $LINK -ldiffattn $RPATH -lm
"$WORK/demo" "$@"
