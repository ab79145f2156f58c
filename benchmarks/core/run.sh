#!/usr/bin/env bash
# Runs coio's core-runtime benchmarks and their references in one go and prints them side by
# side, with ratios against the hand-written floors measured in the same run:
#   spawn+gather  vs ref_bare_coroutine (bare C++20 coroutine frames: create, resume, destroy)
#   await ready   vs ref_bare_coroutine's bare_await_ready (the smallest awaitable coroutine type)
#   timers        vs ref_uring_timers   (hand-written liburing loop with a timer heap)
# Builds nothing: configure and build first (Release), e.g.
#   cmake -S . -B /tmp/build-x -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/build-x -j2
#   benchmarks/core/run.sh /tmp/build-x
#
# Programs (each skipped with a note when it is not built):
#   ref_bare_coroutine, ref_uring_timers, ref_asio  C++ references (benchmarks/core/CMakeLists.txt)
#   ref_asyncio.py                                  asyncio and uvloop, run with /usr/bin/python3
#   bench_core                                      coio, Google Benchmark, only the spawn+gather
#                                                   and await benchmarks (regex COIO_SPAWN_FILTER)
#   bench_timers                                    coio, standalone, timer workload
#
# Result format every program prints (see ref_common.hpp), one line per result:
#   name=<id> key=value ...   spawn: ns_per_task, bytes_per_task; timers: last_after_longest_ms,
#                             p50_ms, p99_ms, max_ms, precision_p99_ms, arm_ms, early,
#                             early_max_ms, missed
# bench_core is read from its JSON output instead: per benchmark, ns per task is the counter
# ns_per_task if present, else its wall-clock (real) time divided by the benchmark's last
# numeric argument (BM_x/1000000), else 1e9 / items_per_second (CPU-time based); bytes per
# task is the counter bytes_per_task if present.
#
# Environment: SPAWN_N (C++ spawn tasks, default 1000000), PY_SPAWN_N (default 200000),
# ROUNDS (C++ rounds, default 5), COIO_SPAWN_FILTER (default "[Ss]pawn|[Gg]ather|await_ready"),
# PER_PROGRAM_TIMEOUT (seconds, default 120). Total runtime is about a minute on 2 cores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
coio_build_dir "$@"
spawn_n=${SPAWN_N:-1000000}
py_spawn_n=${PY_SPAWN_N:-200000}
rounds=${ROUNDS:-5}
spawn_filter=${COIO_SPAWN_FILTER:-'[Ss]pawn|[Gg]ather|await_ready'}
limit=${PER_PROGRAM_TIMEOUT:-120}

work=$(mktemp -d /tmp/coio-core-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
results=$work/results.txt
notes=$work/notes.txt
: >"$results"
: >"$notes"
status=0

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [[ $build_type != Release && $build_type != RelWithDebInfo ]]; then
    echo "warning: $build has CMAKE_BUILD_TYPE='${build_type}', figures are meant for Release" | tee -a "$notes"
fi

# Prints the path of executable $1 in the build tree, or nothing.
find_program() {
    local dir
    for dir in "$build/benchmarks/core" "$build/core" "$build"; do
        if [[ -f $dir/$1 && -x $dir/$1 ]]; then
            echo "$dir/$1"
            return
        fi
    done
    find "$build" -type f -name "$1" -perm -u+x -print -quit 2>/dev/null
}

# Runs one program (bounded by $limit seconds), shows its output, keeps its result lines.
run_program() {
    local label=$1
    shift
    echo
    echo "== $label: $*"
    local rc=0
    timeout --kill-after=5 "$limit" "$@" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
    cat "$work/out.txt"
    if [[ -s $work/err.txt ]]; then sed 's/^/  stderr: /' "$work/err.txt"; fi
    grep '^name=' "$work/out.txt" >>"$results" || true
    if [[ $rc -ne 0 ]]; then
        echo "$label exited with status $rc$([[ $rc -eq 124 ]] && echo " (timed out after ${limit}s)")" | tee -a "$notes"
        status=1
    fi
}

# Runs a C++ program if it was built, else records why it is missing.
run_built() {
    local exe
    exe=$(find_program "$1")
    if [[ -z $exe ]]; then
        echo "$1: not built in $build (skipped)" | tee -a "$notes"
        return
    fi
    shift
    run_program "$(basename "$exe")" "$exe" "$@"
}

run_built ref_bare_coroutine "$spawn_n" "$rounds"
run_built ref_uring_timers
run_built ref_asio "$spawn_n" "$rounds"
run_program ref_asyncio.py "$python" "$here/ref_asyncio.py" "$py_spawn_n"

bench_core=$(find_program bench_core)
if [[ -n $bench_core ]]; then
    echo
    echo "== bench_core --benchmark_filter='$spawn_filter'"
    rc=0
    timeout --kill-after=5 "$limit" "$bench_core" --benchmark_filter="$spawn_filter" \
        --benchmark_out="$work/bench_core.json" --benchmark_out_format=json || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "bench_core exited with status $rc" | tee -a "$notes"
        status=1
    fi
    if [[ -s $work/bench_core.json ]]; then
        "$python" - "$work/bench_core.json" >>"$results" <<'EOF'
import json, re, sys
scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
for b in json.load(open(sys.argv[1])).get("benchmarks", []):
    if b.get("run_type") == "aggregate" or b.get("error_occurred"):
        continue
    # "/real_time" (UseRealTime) says nothing the table does not: every figure here is wall clock.
    name = "coio:" + re.sub(r"/(real|process)_time$", "", b["name"]).replace(" ", "_")
    fields = {}
    args = re.findall(r"/(\d+)", b["name"])
    if "await_ready" in b["name"]:  # BM_await_ready_coro/N: N awaits per iteration
        ns = b["real_time"] * scale.get(b.get("time_unit", "ns"), 1.0) / (int(args[-1]) if args else 1)
        print(f"name={name} ns_per_await={ns:.2f}")
        continue
    if "ns_per_task" in b:
        ns = b["ns_per_task"]
    elif args:  # wall-clock time, like every reference (Google Benchmark's rates use CPU time)
        ns = b["real_time"] * scale.get(b.get("time_unit", "ns"), 1.0) / int(args[-1])
        fields["n"] = args[-1]
    elif "items_per_second" in b:
        ns = 1e9 / b["items_per_second"]
    else:
        continue
    line = f"name={name} ns_per_task={ns:.1f}"
    if "bytes_per_task" in b:
        line += f" bytes_per_task={b['bytes_per_task']:.1f}"
    print(" ".join([line] + [f"{k}={v}" for k, v in fields.items()]))
EOF
    fi
else
    echo "bench_core: not built in $build (skipped)" | tee -a "$notes"
fi

run_built bench_timers

echo
echo "================ side by side (one run, this machine) ================"
"$python" - "$results" <<'EOF'
import sys

rows = []
for line in open(sys.argv[1]):
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if "name" in fields:
        rows.append(fields)


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return None


def cell(value, width, digits=1):
    return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"


def ratio(value, reference, width=7):
    if value is None or reference is None or reference <= 0:
        return f"{'-':>{width}}"
    return f"{value / reference:>{width - 1}.2f}x"


spawn = [r for r in rows if "ns_per_task" in r]
timers = [r for r in rows if "last_after_longest_ms" in r]

bare = next((r for r in spawn if r["name"] == "bare_coroutine"), None)
bare_ns, bare_bytes = (num(bare, "ns_per_task"), num(bare, "bytes_per_task")) if bare else (None, None)
print()
print("spawn + gather of no-op coroutines (ns and peak bytes per task; ratios vs bare_coroutine)")
print(f"{'program':<40}{'tasks':>9}{'ns/task':>10}{'vs bare':>10}{'bytes/task':>12}{'vs bare':>10}")
for r in spawn:
    print(f"{r['name']:<40}{r.get('n', '-'):>9}{cell(num(r, 'ns_per_task'), 10)}{ratio(num(r, 'ns_per_task'), bare_ns, 10)}"
          f"{cell(num(r, 'bytes_per_task'), 12)}{ratio(num(r, 'bytes_per_task'), bare_bytes, 10)}")
print(f"{'issue target for coio':<40}{'1000000':>9}{'<= 100':>10}{'':>10}{'<= 250':>12}")
print("ns/task is the median of the rounds. bare_coroutine_hot recycles one frame: the allocator-hot")
print("best case, not the spawn+gather shape (its memory is not measured).")

awaits = [r for r in rows if "ns_per_await" in r]
bare_await = next((num(r, "ns_per_await") for r in awaits if r["name"] == "bare_await_ready"), None)
print()
print("co_await of a coroutine that returns at once (ns per await; ratio vs bare_await_ready)")
print(f"{'program':<40}{'ns/await':>10}{'vs bare':>10}")
for r in awaits:
    print(f"{r['name']:<40}{cell(num(r, 'ns_per_await'), 10, 2)}{ratio(num(r, 'ns_per_await'), bare_await, 10)}")
print(f"{'issue target for coio':<40}{'<= 5':>10}")

def ref_figures(name):
    ref = next((r for r in timers if r["name"] == name), None)
    return (num(ref, "last_after_longest_ms"), num(ref, "p99_ms")) if ref else (None, None)


print()
print("concurrent sleeps of 0-100 ms (ms late; ratios vs ref_uring_timers)")
print(f"{'program':<28}{'sleeps':>8}{'last':>10}{'vs ref':>10}{'p50':>10}{'p99':>10}{'vs ref':>10}{'max':>10}"
      f"{'prec p99':>10}{'arm':>10}{'early':>7}{'by ms':>8}{'missed':>7}")
for r in timers:
    # A warm round is compared with the reference's warm round.
    ref_last, ref_p99 = ref_figures("ref_uring_timers_warm" if r["name"].endswith("_warm") else "ref_uring_timers")
    print(f"{r['name']:<28}{r.get('timers', '-'):>8}{cell(num(r, 'last_after_longest_ms'), 10, 2)}"
          f"{ratio(num(r, 'last_after_longest_ms'), ref_last, 10)}{cell(num(r, 'p50_ms'), 10, 2)}"
          f"{cell(num(r, 'p99_ms'), 10, 2)}{ratio(num(r, 'p99_ms'), ref_p99, 10)}{cell(num(r, 'max_ms'), 10, 2)}"
          f"{cell(num(r, 'precision_p99_ms'), 10, 2)}{cell(num(r, 'arm_ms'), 10, 2)}"
          f"{r.get('early', '-'):>7}{cell(num(r, 'early_max_ms'), 8, 2)}{r.get('missed', '-'):>7}")
print(f"{'issue target for coio':<28}{'100000':>8}{'<= 10':>10}{'':>10}{'':>10}{'<= 2':>10}")
print("last = last wake-up after the longest deadline; p50/p99/max = wake-up - (t0 + d), t0 read before the")
print("first sleep is created; prec p99 = wake-up - (sleep's own start + d); arm = time until the last sleep")
print("was armed; early = wake-ups before the sleep's own start + d (by ms: the earliest), must be 0 for")
print("coio and ref_uring_timers (uvloop's millisecond timers do wake early); missed must be 0 everywhere.")
print("_warm: a second round in the same process, on memory the first round gave back (ratio vs the")
print("reference's own second round); the rows without it start in a fresh process.")
EOF
if [[ -s $notes ]]; then
    echo
    echo "notes:"
    sed 's/^/  /' "$notes"
fi
exit "$status"
