#!/usr/bin/env bash
# scripts/bootstrap.sh - from a fresh Debian 12 / Ubuntu machine to a running coio example,
# quickly: installs only what the library and one example need, builds only that example.
#
# Installs (apt-get, through sudo when not root, and only the packages that are missing):
# g++, cmake, ninja-build, pkg-config, liburing-dev, libc-ares-dev. Builds the example in
# Release into <repo>/build/quickstart (tests, benchmarks and header checks off) and runs it.
# The whole test suite, with everything it needs (clang, Catch2, Google Benchmark, ...), is
# .ci/run / scripts/test.sh.
#
# Usage: scripts/bootstrap.sh [example [args...]]   (default example: gather)
# Environment: COIO_SKIP_APT=1 skips the apt-get step; COIO_BUILD_ROOT, COIO_JOBS as in test.sh.
set -euo pipefail

example=${1:-gather}
shift || true
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${COIO_BUILD_ROOT:-$repo/build}
build=$build_root/quickstart
jobs=${COIO_JOBS:-2}

if [[ ! -f $repo/examples/$example.cpp ]]; then
    echo "no example '$example'; available:" >&2
    find "$repo/examples" -maxdepth 1 -name '*.cpp' -printf '  %f\n' | sed 's/\.cpp$//' | sort >&2
    exit 2
fi

# The library needs liburing, c-ares (both through pkg-config) and a C++20 compiler; CMake
# and Ninja build the example. Nothing else.
packages=(g++ cmake ninja-build pkg-config liburing-dev libc-ares-dev)

if [[ ${COIO_SKIP_APT:-0} != 1 ]]; then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        sudo=()
        if [[ $(id -u) -ne 0 ]]; then
            sudo=(sudo)
        fi
        echo "== installing: ${missing[*]}"
        "${sudo[@]}" apt-get update
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    else
        echo "== already installed: ${packages[*]}"
    fi
fi

echo "== building examples/$example.cpp (Release, g++) in $build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release \
    -DCOIO_BUILD_TESTS=OFF -DCOIO_BUILD_BENCHMARKS=OFF -DCOIO_VERIFY_HEADERS=OFF \
    -DCOIO_BUILD_EXAMPLES=ON -DCOIO_INSTALL=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target "$example"

exe=$build/examples/$example
echo "== running $exe $*"
exec "$exe" "$@"
