#!/usr/bin/env python3
"""benchmarks/files/ref_asyncio_files.py - the small-files case the aiofiles way: every file
read by asyncio.to_thread(open + read) with --concurrency tasks in flight. Prints
"name=small_asyncio_to_thread value=N unit=files/s" (best of --rounds)."""
import argparse, asyncio, os, tempfile, time


def read_whole(path):
    with open(path, "rb") as f:
        return f.read()


async def worker(paths, it, total):
    for p in it:
        n = len(await asyncio.to_thread(read_whole, p))
        total[0] += n


async def main(args):
    with tempfile.TemporaryDirectory(prefix="coio_file_ref_") as d:
        paths = []
        for i in range(args.count):
            p = os.path.join(d, f"s{i}")
            with open(p, "wb") as f:
                f.write(b"x" * 4096)
            paths.append(p)
        best = 0.0
        for _ in range(args.rounds):
            it = iter(paths)
            total = [0]
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(paths, it, total) for _ in range(min(args.concurrency, len(paths)))))
            dt = time.perf_counter() - t0
            assert total[0] == 4096 * len(paths)
            best = max(best, len(paths) / dt)
        print(f"name=small_asyncio_to_thread value={best:.0f} unit=files/s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
