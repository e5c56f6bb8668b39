#!/usr/bin/env python
"""Keepalive tuning: how fast a dead peer is noticed, and the latency it measures.

    python examples/patterns/keepalive.py [PORT]  # also $PORT; default 8765
    PING_INTERVAL=5 PING_TIMEOUT=2 python examples/patterns/keepalive.py

The server pings every client every `ping_interval` seconds; a client that
has not answered with a pong `ping_timeout` seconds later is considered
gone and its connection is closed with 1011.  The defaults (20 s and 20 s)
suit most sites; shorter values notice dead peers (a phone that lost its
network) sooner, at the cost of more traffic.  `None` disables either.

Each handler also measures the round trip once by hand (`await ping()`
returns a future that resolves to the latency) and then prints
`websocket.latency`, which every keepalive pong updates.  The echo keeps the
connection useful meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import asgiws

HOST = "127.0.0.1"
PING_INTERVAL = float(os.environ.get("PING_INTERVAL", "5"))
PING_TIMEOUT = float(os.environ.get("PING_TIMEOUT", "5"))


async def report_latency(websocket: asgiws.WebSocketConnection) -> None:
    while True:
        await asyncio.sleep(PING_INTERVAL)
        print(f"{websocket.id} latency {websocket.latency * 1000:.3f} ms", flush=True)


async def handler(websocket: asgiws.WebSocketConnection) -> None:
    reporter = asyncio.create_task(report_latency(websocket))
    try:
        pong_waiter = await websocket.ping()
        latency = await pong_waiter
        print(f"{websocket.id} first ping answered in {latency * 1000:.3f} ms", flush=True)
        async for message in websocket:
            await websocket.send(message)
    except asgiws.ConnectionClosedError:
        pass  # e.g. no pong in time: reported below, like a normal close
    finally:
        reporter.cancel()
    print(f"{websocket.id} closed with code {websocket.close_code}", flush=True)


async def main(port: int) -> None:
    async with asgiws.serve(
        handler, HOST, port, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        print(
            f"listening on ws://{HOST}:{bound} "
            f"(ping_interval={PING_INTERVAL:g} s, ping_timeout={PING_TIMEOUT:g} s)",
            flush=True,
        )
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
