#!/usr/bin/env python
"""recv() with a timeout: close connections that stay silent too long.

    python examples/patterns/recv_timeout.py [PORT]  # also $PORT; default 8765

An echo server that gives each client IDLE_TIMEOUT seconds to send its next
message; then it says so and closes the connection (1000, "idle timeout").
Cancelling `recv()` (which `asyncio.wait_for` does on timeout) is safe: a
message arriving at that moment stays queued for the next `recv()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import asgiws

HOST = "127.0.0.1"
IDLE_TIMEOUT = 2.0  # seconds


async def echo_until_idle(websocket: asgiws.WebSocketConnection) -> None:
    while True:
        try:
            message = await asyncio.wait_for(websocket.recv(), timeout=IDLE_TIMEOUT)
        except asyncio.TimeoutError:  # the builtin TimeoutError since Python 3.11
            await websocket.send(f"no message for {IDLE_TIMEOUT:g} s: closing")
            await websocket.close(1000, "idle timeout")
            return
        except asgiws.ConnectionClosed:
            return
        await websocket.send(message)


async def main(port: int) -> None:
    async with asgiws.serve(echo_until_idle, HOST, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
