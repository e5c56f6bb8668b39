"""The hub benchmark's routes as Starlette apps, the form the hub's users write
(issue 10 names "a Starlette app that loops `await ws.send_...`" as the
baseline); the routes and control protocol of benchmarks/apps.py and
hub_app.py:

- `loop_app`: ``/broadcast?group=G`` joins a set of Starlette WebSockets;
  ``/broadcast/control?group=G`` answers ``count`` with the set's size and
  sends each binary message to every member with ``await ws.send_bytes(...)``.
- `hub_app`: the same routes on `asgiws.Hub` (memory://): members join the
  hub's channel, a binary message is one ``hub.publish()``.
- Both answer an HTTP ``GET`` on any path with ``Hello, world!`` (the
  readiness probe).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import asgiws

HUB = asgiws.Hub("memory://")

# group name -> its members (one process, one event loop: a plain dict).
GROUPS: dict[str, set[WebSocket]] = {}


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] == "websocket.receive":
        pass


async def loop_subscriber(websocket: WebSocket) -> None:
    await websocket.accept()
    group = websocket.query_params.get("group", "")
    members = GROUPS.setdefault(group, set())
    members.add(websocket)
    try:
        await until_disconnect(websocket)
    finally:
        members.discard(websocket)


async def control(
    websocket: WebSocket, count: Callable[[], int], fan_out: Callable[[bytes], Awaitable[None]]
) -> None:
    """The control route: a text message asks for the group's size, a binary
    one is fanned out."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] != "websocket.receive":
            return
        payload = message.get("bytes")
        if payload is None:
            await websocket.send_text(str(count()))
        else:
            await fan_out(payload)


async def loop_control(websocket: WebSocket) -> None:
    members = GROUPS.setdefault(websocket.query_params.get("group", ""), set())

    async def send_to_each(payload: bytes) -> None:
        for member in tuple(members):  # a member may leave mid fan-out
            try:
                await member.send_bytes(payload)
            except Exception:  # a vanished subscriber is not an app error
                members.discard(member)

    await control(websocket, lambda: len(members), send_to_each)


async def hub_subscriber(websocket: WebSocket) -> None:
    await websocket.accept()
    group = websocket.query_params.get("group", "")
    await HUB.join(group, websocket)
    try:
        await until_disconnect(websocket)
    finally:
        await HUB.leave(group, websocket)


async def hub_control(websocket: WebSocket) -> None:
    group = websocket.query_params.get("group", "")

    async def publish(payload: bytes) -> None:
        await HUB.publish(group, payload)

    await control(websocket, lambda: HUB.members(group), publish)


@asynccontextmanager
async def hub_lifespan(app: Starlette) -> AsyncIterator[None]:
    async with HUB:
        yield


loop_app = Starlette(
    routes=[
        WebSocketRoute("/broadcast", loop_subscriber),
        WebSocketRoute("/broadcast/control", loop_control),
        Route("/{path:path}", hello),
    ]
)
hub_app = Starlette(
    routes=[
        WebSocketRoute("/broadcast", hub_subscriber),
        WebSocketRoute("/broadcast/control", hub_control),
        Route("/{path:path}", hello),
    ],
    lifespan=hub_lifespan,
)
