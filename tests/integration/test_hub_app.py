"""The Starlette app the hub tests run (no tests here): one WebSocket route
that joins a hub channel, an HTTP route that publishes, and the hub's state.

Environment: HUB_URL (default memory://), HUB_SLOW (drop|close),
HUB_MAX_QUEUED (bytes).  Served by asgiws (fast path) and by uvicorn (the
plain path) alike.

- `WS /ws/{channel}?also=C`: joins `channel` (and C) and stays until the
  client leaves; `?leave=0`: never calls `hub.leave()` (the hub must notice).
- `POST /publish/{channel}`: the body is published (text; `?binary=1`: bytes);
  503 with the error while the hub cannot publish.
- `GET /status?channel=C`: {"connected", "members", "stats"} as JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import asgiws


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    max_queued = os.environ.get("HUB_MAX_QUEUED")
    hub = asgiws.Hub(
        os.environ.get("HUB_URL", "memory://"),
        slow_subscriber="close" if os.environ.get("HUB_SLOW") == "close" else "drop",
        max_queued=None if max_queued is None else int(max_queued),
        reconnect_max=0.5,
    )
    async with hub:
        app.state.hub = hub
        yield


async def member(websocket: WebSocket) -> None:
    hub: asgiws.Hub = websocket.app.state.hub
    channels = [websocket.path_params["channel"], *websocket.query_params.getlist("also")]
    await websocket.accept()
    for channel in channels:
        await hub.join(channel, websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        if websocket.query_params.get("leave") != "0":
            for channel in channels:
                await hub.leave(channel, websocket)


async def publish(request: Request) -> PlainTextResponse:
    hub: asgiws.Hub = request.app.state.hub
    body = await request.body()
    message: str | bytes = body if request.query_params.get("binary") else body.decode()
    try:
        await hub.publish(request.path_params["channel"], message)
    except asgiws.HubUnavailable as exc:
        return PlainTextResponse(str(exc), status_code=503)
    return PlainTextResponse("published")


async def status(request: Request) -> JSONResponse:
    hub: asgiws.Hub = request.app.state.hub
    channel = request.query_params.get("channel", "")
    return JSONResponse({
        "connected": hub.connected,
        "members": hub.members(channel) if channel else 0,
        "stats": dataclasses.asdict(hub.stats),
    })


app = Starlette(
    routes=[
        WebSocketRoute("/ws/{channel}", member),
        Route("/publish/{channel}", publish, methods=["POST"]),
        Route("/status", status),
    ],
    lifespan=lifespan,
)
