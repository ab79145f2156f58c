#!/usr/bin/env bash
# Runs the sync benchmarks and their Python asyncio references in one go and prints them side
# by side, with the speed-up (asyncio ns / coio ns) measured in the same run.
# Builds nothing: configure and build first (Release), e.g.
#   cmake -S . -B /tmp/build-x -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/build-x -j2
#   benchmarks/sync/run.sh /tmp/build-x
# Environment: PY_SCALE (multiplies the Python iteration counts, default 1),
#              MIN_TIME (Google Benchmark --benchmark_min_time, default 0.5),
#              PER_PROGRAM_TIMEOUT (seconds, default 300).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
coio_build_dir "$@"
limit=${PER_PROGRAM_TIMEOUT:-300}
min_time=${MIN_TIME:-0.5}

bench=$(coio_find_program sync bench_sync)  # built only with libbenchmark-dev
# libbenchmark >= 1.8 wants a unit ("0.5s"); 1.7 (Debian 12) wants a plain number.
version=$(pkg-config --modversion benchmark 2>/dev/null || echo 0)
if [[ $(printf '%s\n' 1.8 "$version" | sort -V | head -n 1) == 1.8 && $min_time != *s ]]; then
    min_time=${min_time}s
fi

work=$(mktemp -d /tmp/coio-sync-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== coio (bench_sync, $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null))"
timeout "$limit" "$bench" --benchmark_min_time="$min_time" --benchmark_out="$work/coio.json" \
    --benchmark_out_format=json
echo "== Python asyncio ($($python --version 2>&1))"
timeout "$limit" "$python" "$here/ref_asyncio_sync.py" --scale "${PY_SCALE:-1}" | tee "$work/py.txt"
if "$python" -c 'import uvloop' 2>/dev/null; then
    timeout "$limit" "$python" "$here/ref_asyncio_sync.py" --uvloop --scale "${PY_SCALE:-1}" | tee -a "$work/py.txt"
fi

"$python" - "$work/coio.json" "$work/py.txt" <<'PY'
import json, sys
coio = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    name = b["name"].split("/")[0]
    for key in ("ns_per_item", "ns_per_acquire", "ns_per_call", "ns_per_iteration"):
        if key in b:
            coio[name] = b[key]
    if name == "BM_queue_nowait":
        coio[name] = b["real_time"] if b.get("time_unit") == "ns" else b["real_time"] * {"us": 1e3, "ms": 1e6}[b["time_unit"]]
py = {}
for line in open(sys.argv[2]):
    f = dict(kv.split("=", 1) for kv in line.split())
    py.setdefault(f["name"], {})[f["impl"]] = float(f["ns"])
rows = [("queue ping-pong (ns/item)", "BM_queue_pingpong", "queue_pingpong"),
        ("queue put/get_nowait (ns/pair)", "BM_queue_nowait", "queue_nowait"),
        ("lock hand-off, 4 tasks (ns/acquire)", "BM_lock_handoff", "lock_handoff"),
        ("to_thread round trip (ns/call)", "BM_to_thread_roundtrip", "to_thread"),
        ("loop iteration, sleep(0) (ns)", "BM_loop_iteration", "sleep0")]
print()
print(f"{'benchmark':38} {'coio':>10} {'asyncio':>10} {'uvloop':>10} {'asyncio/coio':>13}")
for label, c, p in rows:
    cv = coio.get(c)
    a = py.get(p, {}).get("asyncio")
    u = py.get(p, {}).get("uvloop")
    fmt = lambda x: f"{x:10.1f}" if x is not None else f"{'-':>10}"
    ratio = f"{a / cv:12.1f}x" if a and cv else f"{'-':>13}"
    print(f"{label:38} {fmt(cv)} {fmt(a)} {fmt(u)} {ratio}")
PY
