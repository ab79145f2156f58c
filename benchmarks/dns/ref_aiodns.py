#!/usr/bin/python3
"""Python reference for the DNS benchmark: asyncio + aiodns (pycares, i.e. the same c-ares).

What a Python programmer writes to resolve many names concurrently, the program coio's
bench_dns is the C++ port of. Resolves bench0.test .. bench<N-1>.test against the dnsmasq
given with --server (127.0.0.1 only), at most --inflight lookups at once (0 = all at once),
checks every answer against run.sh's hosts file (bench<i>.test -> 10.<i>>16>.<i>>8>.<i>), and
prints one key=value line like ref_cares_poll.

It never uses the system resolver: not socket.getaddrinfo, and the c-ares channel reads
/dev/null as resolv.conf, skips /etc/hosts (lookups "b") and has no search domains.
aiodns 3.0 has no getaddrinfo; gethostbyname is c-ares' ares_gethostbyname, which c-ares 1.18
implements on top of ares_getaddrinfo (with address sorting, like ref_cares_poll's default).

Needs Debian's python3-aiodns (for /usr/bin/python3, not a pyenv python).
Usage: ref_aiodns.py --server 127.0.0.1:PORT [--count 2000] [--inflight 100]
                     [--timeout-ms 2000] [--tries 2] [--uvloop]
"""
import argparse
import asyncio
import socket
import sys
import time

import aiodns
import pycares


def expected(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


async def run(args: argparse.Namespace) -> dict:
    host, _, port = args.server.rpartition(":")
    resolver = aiodns.DNSResolver(
        nameservers=[host], udp_port=int(port), tcp_port=int(port),
        timeout=args.timeout_ms / 1000.0, tries=args.tries,
        lookups="b", domains=[], resolvconf_path="/dev/null",
        flags=pycares.ARES_FLAG_NOSEARCH)
    cap = asyncio.Semaphore(args.inflight if args.inflight > 0 else args.count)
    stats = {"ok": 0, "timeouts": 0, "failures": 0, "wrong": 0}
    latencies = []

    async def one(i: int) -> None:
        async with cap:
            started = time.perf_counter()
            try:
                result = await resolver.gethostbyname(f"bench{i}.test", socket.AF_INET)
                if result.addresses == [expected(i)]:
                    stats["ok"] += 1
                else:
                    stats["wrong"] += 1
            except aiodns.error.DNSError as e:
                if e.args[0] == aiodns.error.ARES_ETIMEOUT:
                    stats["timeouts"] += 1
                else:
                    stats["failures"] += 1
            latencies.append((time.perf_counter() - started) * 1000.0)

    # Bound the whole run whatever happens: every try of every query timing out, plus slack.
    worst_s = sum(args.timeout_ms << t for t in range(args.tries)) / 1000.0 + args.count / 1000.0 + 10
    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(args.count))), worst_s)
    total = time.perf_counter() - t0
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[int(q * (len(latencies) - 1))] if latencies else 0.0

    return dict(names_per_s=f"{stats['ok'] / total:.0f}", timeouts=stats["timeouts"],
                failures=stats["failures"], wrong=stats["wrong"], ok=stats["ok"],
                total_s=f"{total:.4f}", count=args.count, inflight=args.inflight,
                p50_ms=f"{pct(0.5):.3f}", p99_ms=f"{pct(0.99):.3f}", max_ms=f"{pct(1.0):.3f}",
                loop="uvloop" if args.uvloop else "asyncio")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--inflight", type=int, default=100)
    p.add_argument("--timeout-ms", type=int, default=2000)
    p.add_argument("--tries", type=int, default=2)
    p.add_argument("--uvloop", action="store_true")
    args = p.parse_args()
    if not args.server.startswith("127."):
        p.error("--server must be 127.x.x.x:PORT")
    if args.uvloop:
        import uvloop
        uvloop.install()
    out = asyncio.run(run(args))
    print(" ".join(f"{k}={v}" for k, v in out.items()))
    return 0 if out["ok"] == args.count else 3


if __name__ == "__main__":
    sys.exit(main())
