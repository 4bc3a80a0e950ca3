#!/usr/bin/env bash
# The test suite under a sanitizer: `swift test --disable-swift-testing --sanitize=KIND` (XCTest,
# debug build) and the C API tests (Tests/capi/run.sh) against a release libdiffattn.so built
# with -sanitize=KIND, whose test programs are linked with the same runtime (cc-wrap).
#
#   bash Tests/sanitize/run.sh address    (make sanitize-address; part of make test)
#   bash Tests/sanitize/run.sh thread     (make sanitize-thread)
#
# Builds go to .build/asan or .build/tsan, away from .build/release. Passes when XCTest reports no
# failure, the sanitizer reports nothing, and the C test program passes every check. The ELF and
# symbol checks of Tests/capi/run.sh concern the shipped build; their results under a sanitizer
# build are printed but not counted here.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SWIFT="${SWIFT:-swift}"
KIND="${1:-address}"
case "$KIND" in
address) SHORT=asan ;;
thread) SHORT=tsan ;;
*) echo "usage: $0 address|thread"; exit 2 ;;
esac
SCRATCH="$ROOT/.build/$SHORT"
TOOLBIN="$(dirname "$(command -v "$SWIFT")")"
export SANITIZE_CC="${SANITIZE_CC:-$TOOLBIN/clang}" SANITIZE_CXX="${SANITIZE_CXX:-$TOOLBIN/clang++}" SANITIZE_KIND="$KIND"
# Huge-allocation tests expect DA_ERR_OUT_OF_MEMORY, which needs malloc to return NULL.
export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1:halt_on_error=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp:print_suppressions=0}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-allocator_may_return_null=1:halt_on_error=0:suppressions=$HERE/tsan.supp}"
export DIFFATTN_NUM_THREADS="${DIFFATTN_NUM_THREADS:-2}"
mkdir -p "$SCRATCH"
failed=0
log="$SCRATCH/sanitize.log"
: >"$log"

report_sanitizer() { # file: count the sanitizer reports in a log
    grep -cE '^(==[0-9]+==ERROR: |WARNING: ThreadSanitizer|SUMMARY: (Address|Leak|Thread|UndefinedBehavior)Sanitizer)' "$1" || true
}

# ---- 1. swift test ------------------------------------------------------------------------------
echo "sanitize-$KIND: swift test --disable-swift-testing --sanitize=$KIND (scratch $SCRATCH)"
set +e
(cd "$ROOT" && "$SWIFT" test --disable-swift-testing --scratch-path "$SCRATCH" --sanitize="$KIND") >"$SCRATCH/swift-test.log" 2>&1
rc=$?
set -e
summary=$(grep -E 'Executed [0-9]+ tests' "$SCRATCH/swift-test.log" | tail -1 | sed 's/^[[:space:]]*//' || true)
reports=$(report_sanitizer "$SCRATCH/swift-test.log")
if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ] && grep -q 'with 0 failures' <<<"$summary"; then
    echo "sanitize-$KIND: swift test: $summary; no sanitizer report"
else
    echo "FAIL sanitize-$KIND: swift test exit $rc, $reports sanitizer report(s): ${summary:-no summary} (log $SCRATCH/swift-test.log)"
    grep -E -A12 '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer)' "$SCRATCH/swift-test.log" | head -60 || true
    failed=1
fi

# ---- 2. C API tests against an instrumented release library ---------------------------------------
echo "sanitize-$KIND: swift build -c release --product diffattn -Xswiftc -sanitize=$KIND"
if ! (cd "$ROOT" && "$SWIFT" build -c release --product diffattn --scratch-path "$SCRATCH" -Xswiftc -sanitize="$KIND") \
    >"$SCRATCH/build-release.log" 2>&1; then
    tail -30 "$SCRATCH/build-release.log"
    echo "FAIL sanitize-$KIND: release build"
    exit 1
fi
set +e
CC="$HERE/cc" CXX="$HERE/c++" DIFFATTN_LIBDIR="$SCRATCH/release" KEEP_WORK= \
    bash "$ROOT/Tests/capi/run.sh" >"$SCRATCH/capi.log" 2>&1
rc=$?
set -e
ctests=$(grep -E '^C tests: [0-9]+ passed, [0-9]+ failed' "$SCRATCH/capi.log" | tail -1 || true)
smoke=$(grep -cE '^FAIL (compile )?cpp_smoke' "$SCRATCH/capi.log" || true)
reports=$(report_sanitizer "$SCRATCH/capi.log")
if [ -n "$ctests" ] && grep -q ' 0 failed' <<<"$ctests" && [ "$smoke" -eq 0 ] && [ "$reports" -eq 0 ]; then
    echo "sanitize-$KIND: $ctests, cpp_smoke ok; no sanitizer report"
else
    echo "FAIL sanitize-$KIND: C tests: ${ctests:-did not finish}; $reports sanitizer report(s) (log $SCRATCH/capi.log)"
    grep -E -B2 -A12 '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer)|^FAIL' "$SCRATCH/capi.log" | head -80 || true
    failed=1
fi
others=$(grep -E '^FAIL' "$SCRATCH/capi.log" | grep -vE 'cpp_smoke|C test program' || true)
[ -z "$others" ] || echo "note (not counted; shipped-build checks on an instrumented build): $others"

if [ "$failed" -eq 0 ]; then echo "sanitize-$KIND: clean"; else echo "sanitize-$KIND: FAILED"; exit 1; fi
