#!/usr/bin/env bash
# libFuzzer targets of libdiffattn (Tests/fuzz/README.md).
#
#   bash Tests/fuzz/run.sh build            build the instrumented library and every harness
#   bash Tests/fuzz/run.sh smoke [SECONDS]  regression inputs + corpus replay + SECONDS (default 5) of
#                                           fuzzing per target, then the numerics test (make fuzz-smoke)
#   bash Tests/fuzz/run.sh fuzz [SECONDS]   SECONDS (default 60) of fuzzing per target, niced, into
#                                           .build/fuzz/corpus/<target> (make fuzz FUZZ_SECONDS=…)
#   bash Tests/fuzz/run.sh repro FILE…      run one target on given inputs (target from the path or
#                                           FUZZ_TARGET)
#
# The library is built by SwiftPM with coverage and ASan in every Swift target:
#   swift build -c release --product diffattn --scratch-path .build/fuzz -Xswiftc -sanitize=fuzzer,address
# (for a shared library the driver instruments but does not link libFuzzer's main), and each
# harness Tests/fuzz/fuzz_<name>.c by the toolchain's clang:
#   clang -g -O1 -fsanitize=fuzzer,address -fuse-ld=lld -Iinclude -ITests/fuzz Tests/fuzz/fuzz_<name>.c \
#         -L.build/fuzz/bin -ldiffattn -Wl,-rpath,.build/fuzz/bin -o .build/fuzz/bin/fuzz_<name>
# A target is every Tests/fuzz/fuzz_*.c; its seed corpus is Tests/fuzz/corpus/<name>/ and its
# regression inputs (crashes found and fixed, each must pass) Tests/fuzz/regressions/<name>/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SWIFT="${SWIFT:-swift}"
SCRATCH="$ROOT/.build/fuzz"
BIN="$SCRATCH/bin"
CLANG="${FUZZ_CC:-$(dirname "$(command -v "$SWIFT")")/clang}"
[ -x "$CLANG" ] || CLANG=clang
export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}"
# A model config may legitimately ask for gigabytes of weights; cap one model at 256 MiB so that the
# fuzzer explores configs instead of allocations (the library refuses larger ones with a message).
export DIFFATTN_MAX_WEIGHT_BYTES="${DIFFATTN_MAX_WEIGHT_BYTES:-268435456}"

targets() {
    for f in "$HERE"/fuzz_*.c; do
        [ -e "$f" ] || continue
        basename "$f" .c | sed 's/^fuzz_//'
    done
}

build() {
    echo "fuzz: building the instrumented library (swift build -c release -Xswiftc -sanitize=fuzzer,address)"
    mkdir -p "$SCRATCH"
    if ! (cd "$ROOT" && "$SWIFT" build -c release --product diffattn --scratch-path "$SCRATCH" \
        -Xswiftc -sanitize=fuzzer,address >"$SCRATCH/build.log" 2>&1); then
        tail -40 "$SCRATCH/build.log"
        echo "fuzz: swift build failed (log $SCRATCH/build.log)"
        exit 1
    fi
    local lib="$SCRATCH/release/libdiffattn.so"
    [ -f "$lib" ] || { echo "fuzz: $lib was not built"; exit 1; }
    mkdir -p "$BIN"
    ln -sf "$lib" "$BIN/libdiffattn.so"
    ln -sf "$lib" "$BIN/libdiffattn.so.0"
    for t in $(targets); do
        local src="$HERE/fuzz_$t.c" exe="$BIN/fuzz_$t"
        if [ ! -x "$exe" ] || [ "$src" -nt "$exe" ] || [ "$HERE/fuzz_common.h" -nt "$exe" ] || [ "$lib" -nt "$exe" ]; then
            "$CLANG" -g -O1 -Wall -Wextra -fsanitize=fuzzer,address -fuse-ld=lld -DFIXTURES_DIR="\"$ROOT/Tests/Fixtures/models\"" \
                -I"$ROOT/include" -I"$HERE" "$src" \
                -L"$BIN" -ldiffattn -Wl,-rpath,"$BIN" -o "$exe"
        fi
        echo "fuzz: built $exe"
    done
}

# libFuzzer flags common to every run: 10 s per input is a hang; 2 GB RSS is a leak or a blow-up.
FLAGS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
# Per-target flags: safetensors seeds are whole checkpoints (30 KB); mutate within 4 KB.
target_flags() {
    case "$1" in
    safetensors) echo "-max_len=4096" ;;
    # ASan quarantine and allocator caches of models of many sizes: 1.8 GB after 15 min (the
    # library itself stays flat); a later flag overrides the common 2 GB limit.
    model_config) echo "-rss_limit_mb=3072" ;;
    esac
}

smoke() {
    local seconds="${1:-5}" failed=0
    build
    for t in $(targets); do
        local exe="$BIN/fuzz_$t" log
        log="$(mktemp)"
        # 1. every regression input and every corpus file, once
        local inputs=()
        for d in "$HERE/regressions/$t" "$HERE/corpus/$t"; do
            [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && inputs+=("$d")
        done
        if [ ${#inputs[@]} -gt 0 ]; then
            if "$exe" "${FLAGS[@]}" -runs=0 "${inputs[@]}" >"$log" 2>&1; then
                echo "fuzz-smoke $t: replayed $(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?') inputs (regressions + corpus): ok"
            else
                echo "FAIL fuzz-smoke $t: replay"; tail -40 "$log"; failed=1
            fi
        fi
        # 2. a short fuzzing run from the corpus (new inputs go to a scratch copy)
        local work
        work="$(mktemp -d)"
        [ -d "$HERE/corpus/$t" ] && cp -r "$HERE/corpus/$t/." "$work/" 2>/dev/null || true
        if "$exe" "${FLAGS[@]}" $(target_flags "$t") -max_total_time="$seconds" -artifact_prefix="$SCRATCH/artifacts-$t-" "$work" >"$log" 2>&1; then
            echo "fuzz-smoke $t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions in ${seconds}s: ok"
        else
            echo "FAIL fuzz-smoke $t: fuzzing found a failure (input kept under $SCRATCH/artifacts-$t-*)"; tail -60 "$log"; failed=1
        fi
        rm -rf "$work" "$log"
    done
    numerics || failed=1
    [ "$failed" -eq 0 ] && echo "fuzz-smoke: ok" || { echo "fuzz-smoke: FAILED"; exit 1; }
}

# Numerical edge cases (docs/robustness.md) against the release library (DIFFATTN_LIBDIR).
numerics() {
    local libdir="${DIFFATTN_LIBDIR:-$ROOT/.build/release}" work
    work="$(mktemp -d)"
    local lib="$libdir/libdiffattn.so"
    [ -f "$lib" ] || lib="$libdir/libdiffattn.so.0"
    ln -s "$lib" "$work/libdiffattn.so.0"
    ${CC:-gcc} -std=gnu11 -O1 -g -Wall -Wextra -Werror -I"$ROOT/include" "$HERE/numerics.c" "$work/libdiffattn.so.0" \
        -Wl,-rpath,"$work" -lm -o "$work/numerics"
    local rc=0
    "$work/numerics" || rc=$?
    rm -rf "$work"
    return $rc
}

fuzz() {
    local seconds="${1:-60}"
    build
    mkdir -p "$SCRATCH/corpus"
    for t in $(targets); do
        local corpus="$SCRATCH/corpus/$t" log="$SCRATCH/fuzz-$t.log"
        mkdir -p "$corpus"
        [ -d "$HERE/corpus/$t" ] && cp -rn "$HERE/corpus/$t/." "$corpus/" 2>/dev/null || true
        echo "fuzz $t: ${seconds}s (log $log, corpus $corpus)"
        if nice -n 10 "$BIN/fuzz_$t" "${FLAGS[@]}" $(target_flags "$t") -max_total_time="$seconds" -artifact_prefix="$SCRATCH/artifacts-$t-" \
            "$corpus" >"$log" 2>&1; then
            echo "fuzz $t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions, no failure"
        else
            echo "fuzz $t: FAILURE — $(grep -E '^(==[0-9]+==ERROR|SUMMARY)' "$log" | head -2 | tr '\n' ' ')"
            echo "  input: $(ls -t "$SCRATCH"/artifacts-"$t"-* 2>/dev/null | head -1). Keep it in Tests/fuzz/regressions/$t/ once fixed."
            exit 1
        fi
    done
}

repro() {
    build >/dev/null
    for f in "$@"; do
        local t="${FUZZ_TARGET:-}"
        [ -n "$t" ] || t="$(basename "$(dirname "$f")")"
        "$BIN/fuzz_$t" "$f"
    done
}

cmd="${1:-smoke}"
shift || true
case "$cmd" in
build) build ;;
smoke) smoke "$@" ;;
fuzz) fuzz "$@" ;;
numerics) numerics ;;
repro) repro "$@" ;;
*) echo "usage: $0 build|smoke [s]|fuzz [s]|numerics|repro FILE…"; exit 2 ;;
esac
