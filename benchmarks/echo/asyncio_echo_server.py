#!/usr/bin/python3
"""Echo server written with asyncio streams: the program coio promises to port line by line.

The "Python asyncio" row of the echo benchmark (run.sh). One handler per connection:
read up to 64 KiB, write it, await drain(), repeat (asyncio sets TCP_NODELAY on TCP
transports itself).

Usage: asyncio_echo_server.py --port P [--loop asyncio|uvloop]
On SIGTERM or SIGINT the server stops and prints "server_cpu_s=..." (getrusage of this
process) to stdout, then exits 0. --loop uvloop runs the same code on uvloop (libuv), if
installed.
"""

import argparse
import asyncio
import resource
import signal


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the peer went away: nothing left to echo to
    finally:
        writer.close()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop  # imported only when asked for: the default needs nothing but CPython

        uvloop.install()
    asyncio.run(serve(args.port))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"server_cpu_s={ru.ru_utime + ru.ru_stime:.6f} "
          f"user_s={ru.ru_utime:.6f} sys_s={ru.ru_stime:.6f}", flush=True)


if __name__ == "__main__":
    main()
