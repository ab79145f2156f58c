#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions below are invoked indirectly ("step_$name", "mode_$name")
# tests/consumer/run.sh - build and run tests/consumer against coio consumed three ways:
#   subdirectory   add_subdirectory(<coio source>)
#   fetchcontent   FetchContent_Declare(coio SOURCE_DIR <coio source>) (no network)
#   find_package   cmake --install coio to a temporary prefix, then find_package(coio CONFIG)
# Prints one PASS/FAIL line per mode and exits non-zero if any mode failed.
#
# Usage: tests/consumer/run.sh [work-dir]
#   work-dir defaults to a fresh temporary directory (removed afterwards unless KEEP=1).
# Environment: CXX (compiler, default g++), CMAKE_GENERATOR (default Ninja),
#              COIO_CONSUMER_MODES (default "subdirectory fetchcontent find_package").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
export CXX=${CXX:-g++}
export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}
modes=${COIO_CONSUMER_MODES:-subdirectory fetchcontent find_package}

if [[ $# -ge 1 ]]; then
    work=$1
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/coio-consumer.XXXXXX")
    if [[ ${KEEP:-0} != 1 ]]; then
        trap 'rm -rf "$work"' EXIT
    fi
fi
work=$(cd "$work" && pwd)

log() { printf '%s\n' "$*"; }

# Runs "$@" with output to $work/<mode>.log; on failure shows the log's tail.
run_logged() {
    local logfile=$1
    shift
    if ! "$@" >>"$logfile" 2>&1; then
        log "---- last lines of $logfile ----"
        tail -n 40 "$logfile" || true
        return 1
    fi
}

# Configures, builds and runs the consumer in $work/<mode>; extra args go to configure.
build_and_run() {
    local mode=$1
    shift
    local build="$work/build-$mode" logfile="$work/$mode.log"
    rm -rf "$build"
    : >"$logfile"
    run_logged "$logfile" cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DCONSUME_MODE="$mode" "$@" || return 1
    run_logged "$logfile" cmake --build "$build" -j2 || return 1
    # The consumer's own build must contain nothing of coio's but the target it asked for.
    if ls "$build"/coio/tests "$build"/_deps/coio-build/tests >/dev/null 2>&1; then
        log "coio's tests directory was configured inside the consumer build"
        return 1
    fi
    run_logged "$logfile" "$build/consumer" || return 1
    # coio::tls exists wherever OpenSSL 3 is installed (CI installs libssl-dev).
    if pkg-config --exists 'openssl >= 3' 2>/dev/null; then
        if [[ ! -x $build/consumer_tls ]]; then
            log "coio::tls was not defined (${mode}) although OpenSSL 3 is installed"
            return 1
        fi
        run_logged "$logfile" "$build/consumer_tls" || return 1
    fi
}

mode_subdirectory() {
    build_and_run subdirectory -DCOIO_SOURCE_DIR="$source_dir"
}

mode_fetchcontent() {
    build_and_run fetchcontent -DCOIO_SOURCE_DIR="$source_dir" \
        -DFETCHCONTENT_FULLY_DISCONNECTED=ON
}

mode_find_package() {
    local build="$work/coio-build" prefix="$work/prefix" logfile="$work/find_package.log"
    rm -rf "$build" "$prefix"
    : >"$logfile"
    # Install only: no tests/examples/benchmarks, the package is all we need here.
    run_logged "$logfile" cmake -S "$source_dir" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" -DCOIO_BUILD_TESTS=OFF -DCOIO_BUILD_EXAMPLES=OFF \
        -DCOIO_BUILD_BENCHMARKS=OFF -DCOIO_VERIFY_HEADERS=OFF || return 1
    run_logged "$logfile" cmake --build "$build" -j2 || return 1
    run_logged "$logfile" cmake --install "$build" || return 1
    for f in include/coio/coio.hpp share/cmake/coio/coioConfig.cmake \
             share/cmake/coio/coioConfigVersion.cmake share/cmake/coio/coioTargets.cmake; do
        if [[ ! -f "$prefix/$f" ]]; then
            log "install is missing $f"
            return 1
        fi
    done
    # Only the installed prefix may be visible: the source tree must not leak in.
    build_and_run find_package -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
}

failed=0
for mode in $modes; do
    start=$SECONDS
    if "mode_$mode"; then
        printf 'consumer %-13s PASS (%ds)\n' "$mode" $((SECONDS - start))
    else
        printf 'consumer %-13s FAIL (%ds, log: %s/%s.log)\n' "$mode" $((SECONDS - start)) "$work" "$mode"
        failed=1
        # Keep the logs for inspection.
        trap - EXIT
    fi
done
exit $failed
