#!/usr/bin/env python
"""Register and unregister: keep the set of connected clients in memory.

    python examples/patterns/register.py [PORT]  # PORT also from $PORT; default 8765

Every client is told how many are connected, each time one arrives or
leaves.  The `finally` is what matters: a connection is unregistered however
its handler ends.  Such a set only knows the clients of this one process;
see pubsub.py for fan-out by topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import asgiws

HOST = "127.0.0.1"

CONNECTED: set[asgiws.WebSocketConnection] = set()


def announce() -> None:
    asgiws.broadcast(CONNECTED, f"{len(CONNECTED)} connected")


async def handler(websocket: asgiws.WebSocketConnection) -> None:
    CONNECTED.add(websocket)  # register
    announce()
    try:
        # Your logic here; this one only waits for the client to leave.
        await websocket.wait_closed()
    finally:
        CONNECTED.remove(websocket)  # unregister
        announce()


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
