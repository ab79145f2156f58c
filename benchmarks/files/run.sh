#!/usr/bin/env bash
# Runs the file benchmarks on both backends (and the Python asyncio to_thread reference) and
# prints the ratios measured in the same run. Builds nothing: configure and build file_bench
# first (Release), e.g.
#   cmake -S . -B /tmp/build-x -G Ninja -DCMAKE_BUILD_TYPE=Release
#   cmake --build /tmp/build-x --target file_bench -j2
#   benchmarks/files/run.sh /tmp/build-x
# Environment: BIG_MIB (size of the large file, default 1024), COUNT (small files, default
# 10000), CONCURRENCY (in flight, default 256), ROUNDS (best of, default 3),
# PER_PROGRAM_TIMEOUT (seconds, default 300).
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: $0 BUILD_DIR   (a configured and built coio build tree)" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
limit=${PER_PROGRAM_TIMEOUT:-300}
bench=""
for dir in "$build/benchmarks/files" "$build/files" "$build"; do
    if [[ -x $dir/file_bench ]]; then bench=$dir/file_bench; break; fi
done
[[ -n $bench ]] || { echo "file_bench not found under $build" >&2; exit 2; }
args=(--big-mib "${BIG_MIB:-1024}" --count "${COUNT:-10000}" --concurrency "${CONCURRENCY:-256}" --rounds "${ROUNDS:-3}")

for backend in io_uring epoll; do
    echo "== coio file_bench, COIO_BACKEND=$backend"
    COIO_BACKEND=$backend timeout "$limit" "$bench" "${args[@]}"
done
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)
echo "== Python asyncio ($($python --version 2>&1)), to_thread(open().read) per file"
timeout "$limit" "$python" "$here/ref_asyncio_files.py" --count "${COUNT:-10000}" \
    --concurrency "${CONCURRENCY:-256}" --rounds "${ROUNDS:-3}"
