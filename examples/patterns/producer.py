#!/usr/bin/env python
"""Producer pattern: send each message your application produces, as it comes.

    python examples/patterns/producer.py [PORT]  # PORT also from $PORT; default 8765

When the client goes away `send()` raises ConnectionClosed, which ends the
`while True` loop and the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import asgiws

HOST = "127.0.0.1"
PRODUCE_EVERY = 0.5  # seconds; stands for waiting on your application


def make_producer() -> Callable[[], Coroutine[Any, Any, str]]:
    """Your business logic: here, numbered messages, one every PRODUCE_EVERY seconds."""
    numbers = itertools.count(1)

    async def produce() -> str:
        await asyncio.sleep(PRODUCE_EVERY)
        return f"message {next(numbers)}"

    return produce


async def producer_handler(websocket: asgiws.WebSocketConnection) -> None:
    produce = make_producer()
    try:
        while True:
            message = await produce()
            await websocket.send(message)
    except asgiws.ConnectionClosed as exc:
        print(f"client left with code {exc.code}", flush=True)


async def main(port: int) -> None:
    async with asgiws.serve(producer_handler, HOST, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
