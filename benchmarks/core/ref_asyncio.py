#!/usr/bin/python3
"""Reference: Python asyncio (and uvloop, when installed) doing coio's two core workloads.

coio is "asyncio for C++", so these are the figures a Python programmer porting to coio starts
from. Run with Debian's interpreter (/usr/bin/python3, where python3-uvloop is installed).

Usage: ref_asyncio.py [N=200000] [rounds=3] [timers=100000]

Results (one `name=... key=value` line each, then a human line starting with '# '; the same
format as the C++ programs in this folder, see ref_common.hpp):
  asyncio_spawn / uvloop_spawn    create_task(no_op()) N times, then gather(*tasks). ns_per_task
      is create + gather time / N (median of the rounds); bytes_per_task is measured in the
      first round: (ru_maxrss after gather - current RSS before creating the tasks) / N.
  asyncio_timers / uvloop_timers  100,000 tasks each `await asyncio.sleep(d)`, d the same fixed
      0-100 ms delays as the C++ programs; lateness against t0 + d and against the sleep's own
      start + d (precision_*), t0 read before the first task is created.
Each measurement runs in a fresh child process, because ru_maxrss never goes down.
"""

import asyncio
import importlib.util
import os
import resource
import subprocess
import sys
import time

DEFAULT_N = 200_000  # Python is ~100x slower than C++ here; 200k keeps a round near a second
DEFAULT_ROUNDS = 3
DEFAULT_TIMERS = 100_000
MAX_DELAY_NS = 100_000_000
MASK64 = (1 << 64) - 1


def timer_delays_ns(n):
    """The timer workload of ref_common.hpp: splitmix64 with the same seed, delays in ns."""
    state = 0x5EEDC0105EEDC010
    delays = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        delays.append(z % (MAX_DELAY_NS + 1))
    return delays


def current_rss_bytes():
    """Resident set size now, from /proc/self/statm (pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    """Peak resident set size of this process so far (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list, as in ref_common.hpp."""
    rank = min(max(int(-(-p * len(sorted_values) // 1)), 1), len(sorted_values))
    return sorted_values[rank - 1]


async def no_op():
    pass


async def spawn_gather(n):
    """create_task n no-op coroutines, gather them; returns elapsed ns."""
    t0 = time.perf_counter_ns()
    tasks = [asyncio.create_task(no_op()) for _ in range(n)]
    await asyncio.gather(*tasks)
    return time.perf_counter_ns() - t0


def measure_spawn(loop_name, n, rounds):
    runner_kwargs = {}
    if loop_name == "uvloop":
        import uvloop
        runner_kwargs["loop_factory"] = uvloop.new_event_loop
    samples = []
    bytes_per_task = 0.0
    with asyncio.Runner(**runner_kwargs) as runner:
        runner.run(spawn_gather(1000))  # warm the loop and the interpreter's caches up
        baseline = current_rss_bytes()
        samples.append(runner.run(spawn_gather(n)) / n)
        bytes_per_task = max(0, peak_rss_bytes() - baseline) / n
        for _ in range(rounds - 1):
            samples.append(runner.run(spawn_gather(n)) / n)
    median = sorted(samples)[len(samples) // 2]
    name = f"{loop_name}_spawn"
    rounds_text = ",".join(f"{s:.1f}" for s in samples)
    print(f"name={name} n={n} rounds={rounds} ns_per_task={median:.1f} ns_per_task_min={min(samples):.1f} "
          f"bytes_per_task={bytes_per_task:.1f} ns_rounds={rounds_text} python={sys.version.split()[0]}")
    print(f"# {loop_name} create_task + gather: {n} tasks, {median:.1f} ns per task (median of {rounds} "
          f"rounds, best {min(samples):.1f}), {bytes_per_task:.1f} bytes per task at peak")


async def sleeper(delay_ns, index, requested, fires):
    requested[index] = time.monotonic_ns()
    await asyncio.sleep(delay_ns / 1e9)
    fires[index] = time.monotonic_ns()


async def sleep_all(delays, requested, fires):
    """Starts one sleeping task per delay, waits for all; returns t0."""
    t0 = time.monotonic_ns()
    tasks = [asyncio.create_task(sleeper(d, i, requested, fires)) for i, d in enumerate(delays)]
    await asyncio.gather(*tasks)
    return t0


def measure_timers(loop_name, count):
    runner_kwargs = {}
    if loop_name == "uvloop":
        import uvloop
        runner_kwargs["loop_factory"] = uvloop.new_event_loop
    delays = timer_delays_ns(count)
    requested = [0] * count
    fires = [0] * count
    with asyncio.Runner(**runner_kwargs) as runner:
        t0 = runner.run(sleep_all(delays, requested, fires))
    missed = sum(1 for f in fires if f == 0)
    fired = [i for i in range(count) if fires[i] != 0] or [0]
    lateness = sorted(fires[i] - (t0 + delays[i]) for i in fired)
    precision = sorted(fires[i] - (requested[i] + delays[i]) for i in fired)
    early = sum(1 for p in precision if p < 0)
    early_by = max(0, -precision[0]) / 1e6
    last_after = (max(fires) - (t0 + max(delays))) / 1e6
    arm = (max(requested) - t0) / 1e6
    p50, p99, worst = (percentile(lateness, 0.50) / 1e6, percentile(lateness, 0.99) / 1e6, lateness[-1] / 1e6)
    q50, q99, qworst = (percentile(precision, 0.50) / 1e6, percentile(precision, 0.99) / 1e6,
                        precision[-1] / 1e6)
    print(f"name={loop_name}_timers timers={count} longest_ms={max(delays) / 1e6:.3f} arm_ms={arm:.3f} "
          f"last_after_longest_ms={last_after:.3f} p50_ms={p50:.3f} p99_ms={p99:.3f} max_ms={worst:.3f} "
          f"precision_p50_ms={q50:.3f} precision_p99_ms={q99:.3f} precision_max_ms={qworst:.3f} "
          f"early={early} early_max_ms={early_by:.3f} missed={missed}")
    print(f"# {loop_name} create_task + asyncio.sleep: {count} sleeps of 0-{max(delays) / 1e6:.0f} ms: last woke "
          f"{last_after:.3f} ms after the longest deadline; lateness p50 {p50:.3f}, p99 {p99:.3f}, max "
          f"{worst:.3f} ms (arming all took {arm:.3f} ms); against each sleep's own start: p50 {q50:.3f}, "
          f"p99 {q99:.3f}, max {qworst:.3f} ms; {early} early (by up to {early_by:.3f} ms), {missed} missed")
    # An early wake-up is the runtime's own behaviour (uvloop: libuv's millisecond timer
    # resolution and cached loop time), reported in the figures; only a lost sleep is a failure.
    return 0 if missed == 0 else 1


def positive_int(text, what):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        sys.exit(f"ref_asyncio.py: {what} must be a positive integer, got {text!r}")
    return value


def main(argv):
    # Child mode: one measurement in this process (see the module docstring for why).
    if len(argv) == 6 and argv[1] == "--child":
        _, _, loop_name, what, first, second = argv
        if what == "spawn":
            measure_spawn(loop_name, int(first), int(second))
            return 0
        return measure_timers(loop_name, int(first))

    n = positive_int(argv[1], "N") if len(argv) > 1 else DEFAULT_N
    rounds = positive_int(argv[2], "rounds") if len(argv) > 2 else DEFAULT_ROUNDS
    timers = positive_int(argv[3], "timers") if len(argv) > 3 else DEFAULT_TIMERS
    loops = ["asyncio"]
    if importlib.util.find_spec("uvloop") is not None:
        loops.append("uvloop")
    else:
        print("# uvloop not installed (apt-get install python3-uvloop): asyncio only")
    status = 0
    for loop_name in loops:
        for what, first, second in (("spawn", n, rounds), ("timers", timers, 0)):
            child = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", loop_name, what,
                                    str(first), str(second)], stdout=subprocess.PIPE, text=True, check=False)
            sys.stdout.write(child.stdout)
            sys.stdout.flush()
            status |= child.returncode
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
