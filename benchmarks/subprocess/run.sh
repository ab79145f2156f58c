#!/usr/bin/env bash
# Spawn benchmark: 1,000 create_subprocess_exec("true") + wait(), processes per second, coio
# on both backends, a plain blocking posix_spawn + waitpid loop (the floor) and Python
# asyncio in the same run, then the ratios. Builds nothing:
# configure and build spawn_bench first (Release), e.g.
#   cmake -S . -B /tmp/build-x -G Ninja -DCMAKE_BUILD_TYPE=Release
#   cmake --build /tmp/build-x --target spawn_bench -j2
#   benchmarks/subprocess/run.sh /tmp/build-x
# Environment: COUNT (processes per round, default 1000), ROUNDS (best of, default 3),
# PER_PROGRAM_TIMEOUT (seconds, default 300).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
coio_build_dir "$@"
limit=${PER_PROGRAM_TIMEOUT:-300}
bench=$(coio_find_program subprocess spawn_bench)
args=(--count "${COUNT:-1000}" --rounds "${ROUNDS:-3}")

declare -A rate
for backend in io_uring epoll; do
    line=$(COIO_BACKEND=$backend timeout "$limit" "$bench" "${args[@]}")
    echo "$line"
    rate[$backend]=$(sed -E 's/.*: ([0-9]+) processes.*/\1/' <<<"$line")
done
line=$(timeout "$limit" "$bench" "${args[@]}" --raw)
echo "$line"
raw=$(sed -E 's/.*: ([0-9]+) processes.*/\1/' <<<"$line")
line=$(timeout "$limit" "$python" "$here/ref_asyncio_spawn.py" "${args[@]}")
echo "$line ($($python --version 2>&1))"
py=$(sed -E 's/.*: ([0-9]+) processes.*/\1/' <<<"$line")
for backend in io_uring epoll; do
    awk -v c="${rate[$backend]}" -v p="$py" -v r="$raw" -v b="$backend" \
        'BEGIN { printf "ratio coio (%s) / asyncio: %.2fx; coio / raw posix_spawn+waitpid: %.2fx\n", b, c / p, c / r }'
done
