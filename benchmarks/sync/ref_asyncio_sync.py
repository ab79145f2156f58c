#!/usr/bin/env python3
"""benchmarks/sync/ref_asyncio_sync.py - the programs of bench_sync.cpp in Python asyncio.

   queue_pingpong    two tasks bounce an int through two asyncio.Queue: ns per item
   queue_nowait      put_nowait + get_nowait: ns per pair
   lock_handoff      4 tasks contend for one asyncio.Lock across asyncio.sleep(0): ns per acquire
   to_thread         await asyncio.to_thread(trivial function), one at a time: ns per call
   sleep0            await asyncio.sleep(0): one loop iteration

Prints one line per result: name=<id> ns=<value> (and the count it was measured over).
Usage: ref_asyncio_sync.py [--uvloop] [--scale F]   (F multiplies the iteration counts)
"""
import asyncio
import sys
import time


async def queue_pingpong(n):
    ping, pong = asyncio.Queue(), asyncio.Queue()

    async def echo():
        while True:
            v = await ping.get()
            if v < 0:
                return
            await pong.put(v)

    peer = asyncio.create_task(echo())
    t0 = time.perf_counter()
    v = 0
    for _ in range(n):
        await ping.put(v)
        v = await pong.get() + 1
    dt = time.perf_counter() - t0
    await ping.put(-1)
    await peer
    return dt * 1e9 / (2 * n)


async def queue_nowait(n):
    q = asyncio.Queue()
    t0 = time.perf_counter()
    v = 0
    for _ in range(n):
        q.put_nowait(v)
        v = q.get_nowait() + 1
    return (time.perf_counter() - t0) * 1e9 / n


async def lock_handoff(n, tasks=4):
    lk = asyncio.Lock()
    count = 0

    async def contender():
        nonlocal count
        for _ in range(n):
            async with lk:
                count += 1
                await asyncio.sleep(0)

    t0 = time.perf_counter()
    await asyncio.gather(*(contender() for _ in range(tasks)))
    return (time.perf_counter() - t0) * 1e9 / count


async def sleep0(n):
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.sleep(0)
    return (time.perf_counter() - t0) * 1e9 / n


async def to_thread(n):
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.to_thread(lambda: 1)
    return (time.perf_counter() - t0) * 1e9 / n


def main():
    scale = 1.0
    if "--scale" in sys.argv:
        scale = float(sys.argv[sys.argv.index("--scale") + 1])
    runner = asyncio.run
    label = "asyncio"
    if "--uvloop" in sys.argv:
        import uvloop  # noqa: PLC0415
        runner = uvloop.run if hasattr(uvloop, "run") else (lambda c: (uvloop.install(), asyncio.run(c))[1])
        label = "uvloop"
    for name, fn, n in (("queue_pingpong", queue_pingpong, 200_000), ("queue_nowait", queue_nowait, 500_000),
                        ("lock_handoff", lock_handoff, 50_000), ("to_thread", to_thread, 20_000),
                        ("sleep0", sleep0, 200_000)):
        n = max(1, int(n * scale))
        ns = runner(fn(n))
        print(f"name={name} impl={label} ns={ns:.1f} n={n}", flush=True)


if __name__ == "__main__":
    main()
