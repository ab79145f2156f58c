#!/usr/bin/env bash
# scripts/bootstrap.sh - from a fresh Debian 12 / Ubuntu machine to a running coio example.
#
# Installs the build dependencies with apt-get (through sudo when not root), builds coio in
# Release with g++ into <repo>/build/gcc-release (the tree scripts/test.sh reuses), and runs
# one example.
#
# Usage: scripts/bootstrap.sh [example]      (default example: gather)
# Environment: COIO_SKIP_APT=1 skips the apt-get step; COIO_BUILD_ROOT, COIO_JOBS as in test.sh.
set -euo pipefail

example=${1:-gather}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${COIO_BUILD_ROOT:-$repo/build}
build=$build_root/gcc-release
jobs=${COIO_JOBS:-2}

# What it takes to build and test coio. The library itself needs only liburing-dev,
# libc-ares-dev, pkg-config and a C++20 compiler; the rest is tests and benchmarks.
packages=(
    cmake ninja-build pkg-config g++ clang libclang-rt-dev
    liburing-dev libc-ares-dev
    catch2 libbenchmark-dev libasio-dev dnsmasq-base python3 python3-uvloop hyperfine
)

if [[ ${COIO_SKIP_APT:-0} != 1 ]]; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "== installing: ${packages[*]}"
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${packages[@]}"
fi

echo "== building Release with g++ in $build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"

exe=$build/examples/$example
if [[ ! -x $exe ]]; then
    echo "example '$example' was not built (examples/$example.cpp missing?); available:" >&2
    find "$build/examples" -maxdepth 1 -type f -perm -u+x -printf '  %f\n' 2>/dev/null | sort >&2
    exit 1
fi
echo "== running $exe"
"$exe"
