"""Python asyncio reference of spawn_bench: create_subprocess_exec("true") + wait(), one
after the other, processes per second (best of --rounds). Same output shape as spawn_bench."""
import argparse
import asyncio
import time


async def spawn_many(count: int) -> float:
    t0 = time.perf_counter()
    for _ in range(count):
        proc = await asyncio.create_subprocess_exec("true")
        if await proc.wait() != 0:
            raise RuntimeError("true did not exit 0")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    best = min(asyncio.run(spawn_many(a.count)) for _ in range(a.rounds))
    print(f"asyncio spawn+wait: {a.count / best:.0f} processes/s ({a.count} processes, best of {a.rounds})")


if __name__ == "__main__":
    main()
