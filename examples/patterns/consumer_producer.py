#!/usr/bin/env python
"""Consumer and producer on one connection: two tasks, neither waits for the other.

    python examples/patterns/consumer_producer.py [PORT]  # also $PORT; default 8765

The handler runs the consumer (messages from the client) and the producer
(messages to the client) side by side; when either one ends (the client
left, or an error), the other is cancelled, so nothing outlives the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys

import asgiws

HOST = "127.0.0.1"
PRODUCE_EVERY = 0.5  # seconds; stands for waiting on your application


async def consumer_handler(websocket: asgiws.WebSocketConnection) -> None:
    async for message in websocket:
        print(f"consumed: {message!r}", flush=True)


async def producer_handler(websocket: asgiws.WebSocketConnection) -> None:
    for number in itertools.count(1):
        await asyncio.sleep(PRODUCE_EVERY)
        await websocket.send(f"message {number}")


async def handler(websocket: asgiws.WebSocketConnection) -> None:
    consumer_task = asyncio.create_task(consumer_handler(websocket))
    producer_task = asyncio.create_task(producer_handler(websocket))
    done, pending = await asyncio.wait(
        [consumer_task, producer_task], return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    # Wait for the cancellations, so the tasks are really gone when we return.
    await asyncio.gather(*pending, return_exceptions=True)
    finished = "consumer" if consumer_task in done else "producer"
    print(f"{finished} finished first; the other one was cancelled", flush=True)


async def main(port: int) -> None:
    async with asgiws.serve(handler, HOST, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
