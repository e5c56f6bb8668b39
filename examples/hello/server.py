#!/usr/bin/env python
"""Hello server: receives a name, answers "Hello {name}!", then closes.

    python examples/hello/server.py [PORT]      # PORT also from $PORT; default 8765

Try it with examples/hello/client.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import asgiws

HOST = "127.0.0.1"


async def hello(websocket: asgiws.WebSocketConnection) -> None:
    name = await websocket.recv()
    print(f"<<< {name!s}", flush=True)

    greeting = f"Hello {name!s}!"
    await websocket.send(greeting)
    print(f">>> {greeting}", flush=True)
    # Returning from the handler closes the connection (code 1000).


async def main(port: int) -> None:
    async with asgiws.serve(hello, HOST, port) as server:
        # port 0 picks a free port: print the one the socket is bound to.
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
