"""The broadcast routes of benchmarks/apps.py, on `asgiws.Hub` instead of a
loop of `await send` (raw ASGI, like apps.py, so only the fan-out differs).

- WebSocket ``/broadcast?group=G``: joins hub channel G, then waits for the peer to leave.
- WebSocket ``/broadcast/control?group=G``: ``count`` -> members of G in this
  process; a binary message is published on G (through Redis with
  ``HUB_URL=redis://...``: every process's members get it).
- HTTP ``GET`` (any path): ``Hello, world!`` (the readiness probe).
"""

from __future__ import annotations

import os
from typing import Any

import asgiws
from benchmarks.apps import Receive, Scope, Send, accepted, group_of, hello

HUB = asgiws.Hub(os.environ.get("HUB_URL", "memory://"))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await hello(send)
    elif kind == "websocket":
        if scope["path"] == "/broadcast/control":
            await control(group_of(scope), receive, send)
        else:
            await subscriber(group_of(scope), scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)


async def subscriber(group: str, scope: Scope, receive: Receive, send: Send) -> None:
    if not await accepted(receive, send):
        return
    member: Any = scope["extensions"][asgiws.CONNECTION_EXTENSION]
    await HUB.join(group, member)
    try:
        while (await receive())["type"] == "websocket.receive":
            pass
    finally:
        await HUB.leave(group, member)


async def control(group: str, receive: Receive, send: Send) -> None:
    if not await accepted(receive, send):
        return
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        payload = message.get("bytes")
        if payload is None:
            await send({"type": "websocket.send", "text": str(HUB.members(group))})
        else:
            await HUB.publish(group, payload)


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await HUB.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await HUB.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
