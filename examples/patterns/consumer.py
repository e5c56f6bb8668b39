#!/usr/bin/env python
"""Consumer pattern: process every message a client sends, in order.

    python examples/patterns/consumer.py [PORT]  # PORT also from $PORT; default 8765

`async for message in websocket` ends when the client goes away (after a
normal close; an error close raises ConnectionClosedError instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import asgiws

HOST = "127.0.0.1"


async def consume(message: str | bytes) -> None:
    """Your business logic: here, print the message."""
    print(f"consumed: {message!r}", flush=True)


async def consumer_handler(websocket: asgiws.WebSocketConnection) -> None:
    async for message in websocket:
        await consume(message)
    print(f"client left with code {websocket.close_code}", flush=True)


async def main(port: int) -> None:
    async with asgiws.serve(consumer_handler, HOST, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
