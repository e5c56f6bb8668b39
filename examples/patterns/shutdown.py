#!/usr/bin/env python
"""Graceful shutdown on SIGTERM (what `kill`, systemd, Docker and Kubernetes send).

    python examples/patterns/shutdown.py [PORT]  # PORT also from $PORT; default 8765

An echo server.  On SIGTERM the `async with serve(...)` block exits: the
server stops accepting, closes every connection with 1001 (going away),
waits for the handlers to finish, and the process exits with status 0.
(Unix only: `loop.add_signal_handler` does not exist on Windows.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import asgiws

HOST = "127.0.0.1"


async def echo(websocket: asgiws.WebSocketConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(port: int) -> None:
    # Set the stop condition when receiving SIGTERM.
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)

    async with asgiws.serve(echo, HOST, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}; stop with: kill -TERM {os.getpid()}", flush=True)
        await stop
        print("SIGTERM received: closing connections", flush=True)
    print("server stopped", flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
