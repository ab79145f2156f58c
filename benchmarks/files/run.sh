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

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
coio_build_dir "$@"
limit=${PER_PROGRAM_TIMEOUT:-300}
bench=$(coio_find_program files file_bench)
args=(--big-mib "${BIG_MIB:-1024}" --count "${COUNT:-10000}" --concurrency "${CONCURRENCY:-256}" --rounds "${ROUNDS:-3}")

for backend in io_uring epoll; do
    echo "== coio file_bench, COIO_BACKEND=$backend"
    COIO_BACKEND=$backend timeout "$limit" "$bench" "${args[@]}"
done
echo "== Python asyncio ($($python --version 2>&1)), to_thread(open().read) per file"
timeout "$limit" "$python" "$here/ref_asyncio_files.py" --count "${COUNT:-10000}" \
    --concurrency "${CONCURRENCY:-256}" --rounds "${ROUNDS:-3}"
