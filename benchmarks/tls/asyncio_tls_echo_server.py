#!/usr/bin/env python3
"""TLS echo server on asyncio streams + ssl, the asyncio row of benchmarks/tls/run.sh.

Usage: asyncio_tls_echo_server.py --port P --cert FILE --key FILE [--loop uvloop]
"""
import argparse
import asyncio
import ssl


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    writer.close()


async def main(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = await asyncio.start_server(echo, "127.0.0.1", args.port, ssl=ctx, backlog=1024)
    await srv.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--loop", default="asyncio")
    a = p.parse_args()
    if a.loop == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main(a))
