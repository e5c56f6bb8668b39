#!/usr/bin/env python
"""Hello client: asks your name, sends it, prints the server's greeting.

    python examples/hello/client.py [PORT]      # PORT also from $PORT; default 8765
"""

from __future__ import annotations

import asyncio
import os
import sys

import asgiws


async def hello(uri: str) -> None:
    async with asgiws.connect(uri) as websocket:
        name = input("What's your name? ")

        await websocket.send(name)
        print(f">>> {name}")

        greeting = await websocket.recv()
        print(f"<<< {greeting!s}")


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    asyncio.run(hello(f"ws://127.0.0.1:{port}"))
