#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions below are invoked indirectly ("step_$name", "mode_$name")
# scripts/test.sh - coio's whole test suite, as CI runs it (.ci/run calls this).
#
# Steps, in order (each one reported PASS/FAIL/SKIP in the summary at the end):
#   gcc-release    g++ Release: build everything (headers alone, tests, examples, benchmarks),
#                  ctest on the default backend (io_uring here), with COIO_BACKEND=epoll, and
#                  with COIO_URING_STREAMING_RUN=0 (see run_ctest_both_backends)
#   clang-release  clang++ Release: same build with clang's warnings, ctest
#   asan           g++ Debug -O1, -fsanitize=address,undefined: tests only, ctest on both
#                  backends as gcc-release
#   tsan           clang++ Debug -O1, -fsanitize=thread: only test files labeled `thread`
#                  (a "// ctest-labels: thread" line in tests/test_*.cpp), ctest -L thread
#   fuzz           clang++ libFuzzer targets (tests/fuzz), each run COIO_FUZZ_SECONDS (30) on a
#                  copy of its seed corpus (tests/fuzz/corpus/<target>); a finding fails it
#   consumer       tests/consumer/run.sh: add_subdirectory, FetchContent, find_package
#   benchmarks     every bench_* executable of the gcc-release build, run once, briefly
#   docs           the API reference (Doxygen, target `docs`): fails on a new warning
#
# Usage: scripts/test.sh [step...]        (default: all steps above, in that order)
# Environment:
#   COIO_BUILD_ROOT  where build trees go (default <repo>/build): <root>/<step>/
#   COIO_JOBS        parallel build and ctest jobs (default 2)
#   COIO_ASAN_CXX    compiler of the asan step (default g++)
#   COIO_TSAN_CXX    compiler of the tsan step (default clang++)
#   COIO_FUZZ_SECONDS  how long the fuzz step runs each fuzzer (default 30)
# Exit status: 0 when every step that ran passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${COIO_BUILD_ROOT:-$repo/build}
jobs=${COIO_JOBS:-2}
all_steps=(gcc-release clang-release asan tsan fuzz consumer benchmarks docs)

export CMAKE_GENERATOR=Ninja
# Sanitizer runtime options (kept if the caller already chose some).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

summary=()
failed=0

banner() { printf '\n==== %s ====\n' "$*"; }

# configure <dir> <cxx> <cmake args...>: a fresh configure of the repository into <dir>
# (the cache is kept between runs, so rebuilds are incremental).
configure() {
    local dir=$1 cxx=$2
    shift 2
    cmake -S "$repo" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" "$@"
}

# -k 0: on a compile error keep building the other targets, so one run shows every error.
build() { cmake --build "$1" -j "$jobs" -- -k 0; }

run_ctest() {
    local dir=$1
    shift
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@"
}

# The whole suite once per backend: as the loop chooses (io_uring where the kernel allows
# it), then forced onto epoll, as a container that refuses io_uring would run it. Tests that
# exist for one backend only (uring_op, ring flags) ask for it explicitly. A third run keeps
# every io_uring receive readiness-style from its start (COIO_URING_STREAMING_RUN=0; the
# default takes that path only for bulk streams), so every stream test also covers it.
run_ctest_both_backends() {
    local dir=$1
    echo "-- ctest, default backend"
    run_ctest "$dir" || return 1
    echo "-- ctest, COIO_BACKEND=epoll"
    COIO_BACKEND=epoll run_ctest "$dir" || return 1
    echo "-- ctest, io_uring receives readiness-style throughout (COIO_URING_STREAMING_RUN=0)"
    COIO_URING_STREAMING_RUN=0 run_ctest "$dir"
}

# ---- configurations --------------------------------------------------------------------

step_gcc-release() {
    local dir=$build_root/gcc-release
    configure "$dir" g++ -DCMAKE_BUILD_TYPE=Release &&
        build "$dir" &&
        run_ctest_both_backends "$dir"
}

step_clang-release() {
    local dir=$build_root/clang-release
    configure "$dir" clang++ -DCMAKE_BUILD_TYPE=Release &&
        build "$dir" &&
        run_ctest "$dir"
}

# Debug with -O1: fast enough for the stress tests. -g1 (line tables): every sanitizer report
# still names file:line in each frame, and g++ compiles a test file in two thirds of the time
# -g takes (28 s against 41 s for test_queue.cpp), which is most of this step.
step_asan() {
    local dir=$build_root/asan
    configure "$dir" "${COIO_ASAN_CXX:-g++}" -DCMAKE_BUILD_TYPE=Debug \
        "-DCMAKE_CXX_FLAGS_DEBUG=-g1 -O1" -DCOIO_SANITIZE=address,undefined \
        -DCOIO_BUILD_EXAMPLES=OFF -DCOIO_BUILD_BENCHMARKS=OFF -DCOIO_VERIFY_HEADERS=OFF &&
        build "$dir" &&
        run_ctest_both_backends "$dir"
}

# ---- ThreadSanitizer -------------------------------------------------------------------
# Only the test files that cross threads (to_thread, call_soon_threadsafe,
# run_coroutine_threadsafe, one loop per thread) are labeled `thread`; only those are built
# and run here. "No tests" counts as success, so the step passes before any file opts in.
step_tsan() {
    local dir=$build_root/tsan
    configure "$dir" "${COIO_TSAN_CXX:-clang++}" -DCMAKE_BUILD_TYPE=Debug \
        "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" -DCOIO_SANITIZE=thread -DCOIO_TEST_ONLY_LABEL=thread \
        -DCOIO_BUILD_EXAMPLES=OFF -DCOIO_BUILD_BENCHMARKS=OFF -DCOIO_VERIFY_HEADERS=OFF ||
        return 1
    build "$dir" || return 1
    # TSan's shadow memory layout breaks when the kernel randomizes mmap with more entropy
    # than the runtime expects ("FATAL: ThreadSanitizer: unexpected memory mapping", seen with
    # vm.mmap_rnd_bits=32 and clang 14). Running without ASLR avoids it; use it when allowed.
    local norandom=()
    if setarch "$(uname -m)" -R true 2>/dev/null; then
        norandom=(setarch "$(uname -m)" -R)
    fi
    "${norandom[@]}" ctest --test-dir "$dir" --output-on-failure -j "$jobs" -L thread \
        --no-tests=ignore
}

# ---- fuzzing ---------------------------------------------------------------------------
# Every tests/fuzz/fuzz_* target (libFuzzer, with ASan and UBSan) runs for a bounded time on
# a fresh copy of its committed seed corpus, one after the other. A crash, a leak, a UB
# report, a timeout or a finding of the target's own model fails the step; the input that
# did it is kept in <build>/fuzz/artifacts/ (reproduce: `<fuzzer> <that file>`).
step_fuzz() {
    local dir=$build_root/fuzz seconds=${COIO_FUZZ_SECONDS:-30}
    configure "$dir" clang++ -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" \
        -DCOIO_BUILD_FUZZERS=ON -DCOIO_BUILD_TESTS=OFF -DCOIO_BUILD_EXAMPLES=OFF \
        -DCOIO_BUILD_BENCHMARKS=OFF -DCOIO_VERIFY_HEADERS=OFF &&
        cmake --build "$dir" -j "$jobs" --target coio_fuzzers -- -k 0 || return 1
    rm -rf "$dir/corpus" "$dir/artifacts"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    local exe name count=0 bad=0
    for exe in "$dir"/tests/fuzz/fuzz_*; do
        [[ -f $exe && -x $exe ]] || continue
        name=$(basename "$exe")
        count=$((count + 1))
        mkdir -p "$dir/corpus/$name"
        if [[ -d $repo/tests/fuzz/corpus/$name ]]; then
            cp -R "$repo/tests/fuzz/corpus/$name/." "$dir/corpus/$name/"
        fi
        printf -- '-- %s: %ss on %s seed inputs
' "$name" "$seconds" "$(find "$dir/corpus/$name" -type f | wc -l)"
        # -timeout: one input taking 10 s is a hang; `timeout` bounds the whole run anyway.
        if timeout $((seconds + 120)) "$exe" "$dir/corpus/$name" -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/$name-" -print_final_stats=1 \
            >"$dir/$name.log" 2>&1; then
            grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/$name.log" || true
        else
            echo "FAILED: $name (full log: $dir/$name.log)"
            grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$dir/$name.log" | tail -n 40
            bad=$((bad + 1))
        fi
    done
    echo "fuzzers run: $count, failed: $bad"
    [[ $count -gt 0 && $bad -eq 0 ]]
}

# ---- consumers -------------------------------------------------------------------------
step_consumer() {
    rm -rf "$build_root/consumer"
    "$repo/tests/consumer/run.sh" "$build_root/consumer"
}

# ---- benchmarks ------------------------------------------------------------------------
# Convention (benchmarks/CMakeLists.txt): Google Benchmark executables are named bench_*.
# Each runs once with a tiny minimum time: this proves they work, it measures nothing.
# A bench_* program that is not a Google Benchmark (it needs a server, or arguments) is
# listed and skipped: it is exercised by its area's run.sh, not here.

# True if $1 is a Google Benchmark program: linked against libbenchmark.so, or (static
# link) containing the library's flag names.
is_google_benchmark() {
    readelf -d "$1" 2>/dev/null | grep -q 'NEEDED.*libbenchmark' ||
        grep -qa -- 'benchmark_min_time' "$1"
}
step_benchmarks() {
    local release=$build_root/gcc-release dir=$build_root/gcc-release/benchmarks
    # Normally a no-op (gcc-release built them); makes `scripts/test.sh benchmarks` standalone.
    if [[ ! -f $release/CMakeCache.txt ]]; then
        configure "$release" g++ -DCMAKE_BUILD_TYPE=Release || return 1
    fi
    build "$release" || return 1
    if [[ ! -d $dir ]]; then
        echo "no benchmarks were configured (is libbenchmark-dev installed?)"
        return 2
    fi
    # libbenchmark >= 1.8 wants a unit ("0.01s"); 1.7 (Debian 12) wants a plain number.
    local min_time=0.01 version
    version=$(pkg-config --modversion benchmark 2>/dev/null || echo 0)
    if [[ $(printf '%s\n' 1.8 "$version" | sort -V | head -n 1) == 1.8 ]]; then
        min_time=0.01s
    fi
    local exe count=0 bad=0 skipped=0
    while IFS= read -r exe; do
        if ! is_google_benchmark "$exe"; then
            printf -- '-- %s: not a Google Benchmark program, not run\n' "${exe#"$build_root"/}"
            skipped=$((skipped + 1))
            continue
        fi
        count=$((count + 1))
        printf -- '-- %s\n' "${exe#"$build_root"/}"
        if ! timeout 300 "$exe" --benchmark_min_time="$min_time"; then
            echo "FAILED: $exe"
            bad=$((bad + 1))
        fi
    done < <(find "$dir" -type f -name 'bench_*' -perm -u+x | sort)
    echo "benchmarks run: $count, failed: $bad, not Google Benchmark programs: $skipped"
    [[ $count -gt 0 ]] || return 2
    [[ $bad -eq 0 ]]
}

# ---- API reference ---------------------------------------------------------------------
# Its own small tree: configuring builds nothing, and the target runs only Doxygen.
step_docs() {
    local dir=$build_root/docs
    configure "$dir" g++ -DCOIO_BUILD_TESTS=OFF -DCOIO_BUILD_EXAMPLES=OFF \
        -DCOIO_BUILD_BENCHMARKS=OFF -DCOIO_VERIFY_HEADERS=OFF &&
        cmake --build "$dir" --target docs
}

# ---- driver ----------------------------------------------------------------------------

steps=("$@")
if [[ ${#steps[@]} -eq 0 ]]; then
    steps=("${all_steps[@]}")
fi
for step in "${steps[@]}"; do
    if ! declare -F "step_$step" >/dev/null; then
        echo "unknown step '$step'; steps: ${all_steps[*]}" >&2
        exit 2
    fi
done

mkdir -p "$build_root"
total_start=$SECONDS
for step in "${steps[@]}"; do
    banner "$step"
    start=$SECONDS
    "step_$step"
    rc=$?
    elapsed=$((SECONDS - start))
    case $rc in
        0) result=PASS ;;
        2) result=SKIP ;;
        *) result=FAIL; failed=1 ;;
    esac
    summary+=("$(printf '%-14s %s (%ds)' "$step" "$result" "$elapsed")")
done

banner "summary ($((SECONDS - total_start))s, build trees in $build_root)"
printf '%s\n' "${summary[@]}"
exit $failed
