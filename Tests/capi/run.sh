#!/usr/bin/env bash
# C API tests of libdiffattn: header hygiene (C99 / C++17), the exported symbol set, the ELF
# hardening of the .so, behaviour and error paths from C, and a C++ smoke program.
# Usage: bash Tests/capi/run.sh [-v]     (DIFFATTN_LIBDIR overrides .build/release)
# Prints "capi: N passed, N failed" last; exits non-zero if anything failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIBDIR="$(cd "${DIFFATTN_LIBDIR:-$ROOT/.build/release}" 2>/dev/null && pwd || echo "${DIFFATTN_LIBDIR:-$ROOT/.build/release}")"
INCLUDE="$ROOT/include"
HEADER="$INCLUDE/diffattn.h"
LIB="$LIBDIR/libdiffattn.so"
[ -f "$LIB" ] || [ ! -f "$LIBDIR/libdiffattn.so.0" ] || LIB="$LIBDIR/libdiffattn.so.0" # installed: SONAME only
CC="${CC:-gcc}"
CXX="${CXX:-g++}"
VERBOSE="${1:-}"

passed=0
failed=0
pass() { passed=$((passed + 1)); [ "$VERBOSE" = "-v" ] && echo "ok   $*" || true; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "capi: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

if [ ! -f "$LIB" ]; then
    fail "library not found: $LIB (build it with: swift build -c release --product diffattn)"
    finish
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/diffattn-capi.XXXXXX")"
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

# `make build` leaves the SONAME link in the build tree (README "Use from C"); a bare `swift build`
# does not, so make the same link here when testing the build tree.
if [ -z "${DIFFATTN_LIBDIR:-}" ] && [ -f "$LIBDIR/libdiffattn.so" ] && [ ! -e "$LIBDIR/libdiffattn.so.0" ]; then
    echo "NOTE $LIBDIR/libdiffattn.so.0 was missing (swift build without make): linking it as make build does"
    ln -sfn libdiffattn.so "$LIBDIR/libdiffattn.so.0"
fi

LDFLAGS="-L$LIBDIR -ldiffattn -Wl,-rpath,$LIBDIR -lm -pthread"
# The executable asks for libdiffattn.so.0 (the SONAME). A build tree holds only libdiffattn.so,
# so give the loader a libdiffattn.so.0 next to the test binaries when the directory lacks one.
RPATH_EXTRA=""
if [ ! -e "$LIBDIR/libdiffattn.so.0" ]; then
    ln -s "$LIB" "$WORK/libdiffattn.so.0"
    RPATH_EXTRA="-Wl,-rpath,$WORK"
fi
if [ ! -e "$LIBDIR/libdiffattn.so" ]; then # no development link: make one for -ldiffattn
    ln -s "$LIB" "$WORK/libdiffattn.so"
    LDFLAGS="-L$WORK $LDFLAGS"
fi

# ---- 1. the header compiles as strict C99 and as C++17 -------------------------------------
if out=$("$CC" -std=c99 -Wall -Wextra -Werror -pedantic -I"$INCLUDE" -c "$HERE/header_c99.c" -o "$WORK/h99.o" 2>&1); then
    pass "header: gcc -std=c99 -Wall -Wextra -Werror -pedantic"
else
    fail "header: gcc -std=c99 -pedantic: $out"
fi
if out=$("$CC" -std=c11 -Wall -Wextra -Werror -pedantic -Wstrict-prototypes -Wmissing-prototypes -I"$INCLUDE" \
        -c "$HERE/header_c99.c" -o "$WORK/h11.o" 2>&1); then
    pass "header: gcc -std=c11 -Wstrict-prototypes -Wmissing-prototypes"
else
    fail "header: gcc -std=c11 strict prototypes: $out"
fi
if out=$("$CXX" -std=c++17 -Wall -Wextra -Werror -I"$INCLUDE" -c "$HERE/header_cxx.cpp" -o "$WORK/hxx.o" 2>&1); then
    pass "header: g++ -std=c++17 -Wall -Wextra -Werror"
else
    fail "header: g++ -std=c++17: $out"
fi
# the header is self-contained apart from dlpack, and links: every declaration used resolves
if out=$("$CC" -std=c99 -I"$INCLUDE" "$HERE/header_c99.c" -shared -fPIC -o "$WORK/h99.so" \
        $LDFLAGS -Wl,--no-undefined 2>&1); then
    pass "header: declarations link against libdiffattn"
else
    fail "header: link: $out"
fi

# ---- 2. exported symbols == declared functions, all at version node DIFFATTN_0 -------------
# Functions declared in the header (comments stripped by the preprocessor; dlpack's own
# declarations carry no da_ prefix).
declared=$("$CC" -E -P -I"$INCLUDE" -x c "$HEADER" | grep -oE '\bda_[a-z0-9_]+ *\(' | sed 's/ *($//' | sort -u)
ndeclared=$(echo "$declared" | grep -c . || true)
if [ "$ndeclared" -ge 30 ]; then pass "header declares $ndeclared da_* functions"; else fail "only $ndeclared da_* functions parsed from the header"; fi
nmout=$(nm -D --defined-only "$LIB")
# global/weak defined symbols (upper-case type letters); local entries are reported below
exported=$(echo "$nmout" | awk '$2 ~ /^[A-Z]$/ {print $3}' | sort -u)
missing=""
for f in $declared; do
    grep -qx "${f}@@DIFFATTN_0" <<<"$exported" || missing="$missing $f"
done
if [ -z "$missing" ]; then pass "every declared function is exported as name@@DIFFATTN_0"; else fail "declared but not exported at DIFFATTN_0:$missing"; fi
extra=""
for s in $exported; do
    [ "$s" = "DIFFATTN_0" ] && continue
    name="${s%%@*}"
    if [ "$s" != "${name}@@DIFFATTN_0" ] || ! grep -qx "$name" <<<"$declared"; then extra="$extra $s"; fi
done
if [ -z "$extra" ]; then pass "nothing else is exported (only declared da_* and the DIFFATTN_0 node)"; else fail "exported but not declared in the header:$extra"; fi
# The node is a version definition; GNU ld also emits an absolute DIFFATTN_0 symbol, lld does not.
if readelf -V "$LIB" | grep -E 'Flags: none .*Name: DIFFATTN_0$' >/dev/null; then pass "version node DIFFATTN_0 defined"; else fail "version node DIFFATTN_0 missing (readelf -V)"; fi
locals=$(echo "$nmout" | awk '$2 ~ /^[a-z]$/ {print $3}')
if [ -n "$locals" ]; then
    echo "NOTE local-binding (not exported, not resolvable) entries in .dynsym: $(echo $locals)"
fi
# The compile-time signature check (every thunk has its declaration's exact type) is generated
# from this header; the committed copy must match it, or the build checked an older header.
if out=$("${PYTHON:-python3}" "$ROOT/packaging/gen-signature-check.py" --check 2>&1); then pass "$out"; else fail "$out"; fi
undefined_da=$(nm -D --undefined-only "$LIB" | grep -E ' da_' || true)
if [ -z "$undefined_da" ]; then pass "no undefined da_* references"; else fail "undefined da_* references: $undefined_da"; fi

# ---- 3. ELF: SONAME, BIND_NOW, RELRO; no Swift toolchain libraries -------------------------
dyn=$(readelf -d "$LIB")
if grep -qE '\(SONAME\).*\[libdiffattn\.so\.0\]' <<<"$dyn"; then pass "SONAME libdiffattn.so.0"; else fail "SONAME is not libdiffattn.so.0: $(echo "$dyn" | grep SONAME || echo none)"; fi
if echo "$dyn" | grep -qE '\(BIND_NOW\)|\(FLAGS\).*BIND_NOW'; then pass "BIND_NOW"; else fail "no BIND_NOW in the dynamic section"; fi
if grep -qE '\(FLAGS_1\).*NOW' <<<"$dyn"; then pass "FLAGS_1 NOW"; else fail "no FLAGS_1 NOW"; fi
if readelf -lW "$LIB" | grep -q 'GNU_RELRO'; then pass "GNU_RELRO segment"; else fail "no GNU_RELRO segment"; fi
if readelf -lW "$LIB" | grep -E 'GNU_STACK' | grep -q 'RWE'; then fail "executable stack"; else pass "non-executable stack"; fi
lddout=$(ldd "$LIB" 2>&1 || true)
bad=$(echo "$lddout" | grep -iE 'swift|/opt/|libdispatch|libBlocksRuntime|libFoundation|libicu|not found' || true)
if [ -z "$bad" ]; then pass "ldd: nothing from the Swift toolchain, nothing missing"; else fail "ldd shows: $bad"; fi
needed=$(echo "$dyn" | grep NEEDED | grep -oE '\[[^]]*\]' | tr -d '[]' | tr '\n' ' ')
if echo "$needed" | grep -qiE 'swift|Foundation|dispatch'; then fail "NEEDED has Swift runtime libraries: $needed"; else pass "NEEDED: $needed"; fi

# run_counted PROGRAM TAG LABEL WHAT [ARGS…]: runs a test program that ends with the line
# "TAG: P passed, F failed", adds its counts, and fails when it crashed, hung or exited non-zero.
run_counted() {
    local prog="$1" tag="$2" label="$3" what="$4" rc line p f
    shift 4
    set +e
    timeout 120 "$prog" "$@" > "$prog.out" 2>&1
    rc=$?
    set -e
    grep -v "^$tag: " "$prog.out" || true
    line=$(grep -E "^$tag: [0-9]+ passed, [0-9]+ failed\$" "$prog.out" | tail -1 || true)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^.*: ([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
        passed=$((passed + p))
        failed=$((failed + f))
        echo "$label: $p passed, $f failed"
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$what exited with $rc"; fi
    else
        fail "$what did not finish (exit status $rc; a crash or a hang)"
    fi
}

# ---- 4. the C test program -----------------------------------------------------------------
CFLAGS="-std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-format-truncation -pthread"
CFLAGS="$CFLAGS -DCAPI_FIXTURES=\"$ROOT/Tests/Fixtures\""
SOURCES="capi_main.c test_basics.c test_forward.c test_helpers.c test_sdpa.c test_misuse.c test_threads.c test_dit.c test_dit_ip.c test_caches.c test_casting.c test_processor_query.c test_model_defaults.c test_hook_scripts.c test_hooks_newer.c test_borrow.c test_lse.c test_parallel.c ../mpi/cp_cases.c test_offload_threads.c test_pretrained.c test_disk_full.c"
srcs=""
for s in $SOURCES; do srcs="$srcs $HERE/$s"; done
if out=$("$CC" $CFLAGS -DDIFFATTN_FIXTURES="\"$ROOT/Tests/Fixtures\"" -I"$INCLUDE" -I"$HERE" $srcs -o "$WORK/capi_tests" $LDFLAGS $RPATH_EXTRA 2>&1); then
    pass "compile C tests"
    run_counted "$WORK/capi_tests" capi-c "C tests" "C test program" $VERBOSE
else
    fail "compile C tests: $out"
fi

# ---- 4b. allocation failure: separate processes (an address-space limit; a 1 TiB mapping) ------
# ulimit -v cannot be combined with a sanitizer's shadow memory: those runs skip the limit case.
if out=$("$CC" $CFLAGS -I"$INCLUDE" "$HERE/oom_main.c" -o "$WORK/oom_main" $LDFLAGS $RPATH_EXTRA 2>&1); then
    cases="noreserve"
    [ -n "${SANITIZE_KIND:-}" ] || cases="limit noreserve"
    for c in $cases; do
        set +e
        if [ "$c" = limit ]; then out=$( (ulimit -v 3000000; timeout 120 "$WORK/oom_main" limit) 2>&1); else out=$(timeout 120 "$WORK/oom_main" "$c" 2>&1); fi
        rc=$?
        set -e
        if [ "$rc" -eq 0 ]; then pass "$out"; else fail "oom_main $c (exit $rc): $(echo "$out" | tail -3)"; fi
    done
else
    fail "compile oom_main.c: $out"
fi

# ---- 5. C++ smoke program ------------------------------------------------------------------
if out=$("$CXX" -std=c++17 -O1 -Wall -Wextra -Werror -I"$INCLUDE" "$HERE/cpp_smoke.cpp" -o "$WORK/cpp_smoke" \
        $LDFLAGS $RPATH_EXTRA 2>&1); then
    pass "compile cpp_smoke.cpp (g++ -std=c++17)"
    if out=$(timeout 60 "$WORK/cpp_smoke" 2>&1); then
        pass "cpp_smoke: $out"
    else
        fail "cpp_smoke: $out"
    fi
else
    fail "compile cpp_smoke.cpp: $out"
fi

# ---- 5b. the C++ wrapper against the C API, and the C++ examples, on this library -------------
CXXWRAP="-std=c++17 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror -I$INCLUDE -I$ROOT/bindings/cpp"
if out=$("$CXX" $CXXWRAP "$HERE/cpp_wrapper.cpp" -o "$WORK/cpp_wrapper" $LDFLAGS $RPATH_EXTRA 2>&1); then
    pass "compile cpp_wrapper.cpp (diffattn.hpp, -Wconversion -Werror)"
    run_counted "$WORK/cpp_wrapper" cpp-wrapper "C++ wrapper tests" cpp_wrapper
else
    fail "compile cpp_wrapper.cpp: $out"
fi
for src in "$ROOT"/examples/cpp/*.cpp; do
    name=$(basename "$src" .cpp)
    if out=$("$CXX" $CXXWRAP "$src" -o "$WORK/example-$name" $LDFLAGS $RPATH_EXTRA 2>&1); then
        if out=$(cd "$WORK" && timeout 120 "./example-$name" 2>&1); then
            pass "examples/cpp/$name.cpp builds and runs against this library"
        else
            fail "examples/cpp/$name.cpp: $out"
        fi
    else
        fail "compile examples/cpp/$name.cpp: $out"
    fi
done

# ---- 6. a C program against the build tree, linked as the README says -----------------------
# No LD_LIBRARY_PATH and no extra link directory: the rpath and the SONAME link must suffice.
if [ -z "${DIFFATTN_LIBDIR:-}" ]; then
    awk '$0 == "## A complete C program" {f = 1; next} f && $0 == "```c" {c = 1; next}
         c && $0 == "```" {exit} c {print}' "$ROOT/README.md" > "$WORK/hello.c"
    if [ ! -s "$WORK/hello.c" ]; then
        fail "build tree: no C program under the README's '## A complete C program'"
    elif out=$(cd "$ROOT" && "$CC" "$WORK/hello.c" -I include -L .build/release -ldiffattn \
            -Wl,-rpath,"$ROOT/.build/release" -o "$WORK/hello" 2>&1); then
        if out=$(cd "$WORK" && env -u LD_LIBRARY_PATH timeout 60 ./hello 2>&1); then
            pass "build tree: cc hello.c -I include -L .build/release -ldiffattn -Wl,-rpath,… runs: $out"
        else
            fail "build tree: the README's C program does not run from the build tree: $out"
        fi
    else
        fail "build tree: compile the README's C program: $out"
    fi
fi

# ---- 7. the API reference holds every section and comment of the header, and is up to date ---
if out=$(python3 "$ROOT/Tests/packaging/api_docs_check.py" "$ROOT" 2>&1); then
    pass "docs/api/diffattn.md: $(echo "$out" | tail -1)"
else
    fail "docs/api/diffattn.md: $out"
fi

finish
