"""The guide's counter on several server processes, shared through Redis.

    redis-server --port 6379 &
    HUB_URL=redis://127.0.0.1:6379/0 asgiws examples.hub_counter.app:app --port 8001 &
    HUB_URL=redis://127.0.0.1:6379/0 asgiws examples.hub_counter.app:app --port 8002 &

then open http://127.0.0.1:8001/ and http://127.0.0.1:8002/: a click on
either page changes the value on both, and both show every user online.

The page is examples/counter/index.html (the guide's).  Both numbers live in
Redis: the value and the count of open pages over all processes.  Each
change is one Lua script that updates the number and publishes the new one
on the hub's channel in the same step, so every process sees the changes in
the order Redis made them (an INCR followed by a separate publish could
reach the pages in the wrong order when two processes change the value at
once).  The script publishes in the hub's Redis format: the hub channel
"counter" is the Redis channel "asgiws:counter", and ``t`` + JSON is a text
message (asgiws/hub/wire.py).

`HUB_URL` defaults to memory:// (one process, no Redis: the numbers are then
kept in this process).  A process that dies without closing its pages leaves
its users counted; a production presence count would expire them per process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import asgiws

HUB_URL = os.environ.get("HUB_URL", "memory://")
CHANNEL = "counter"
REDIS_CHANNEL = "asgiws:" + CHANNEL  # the hub's default prefix
VALUE_KEY = "counter:value"
USERS_KEY = "counter:users"
INDEX_HTML = (Path(__file__).resolve().parent.parent / "counter" / "index.html").read_text()

# KEYS[1]: the number, KEYS[2]: the channel; ARGV[1]: the change, ARGV[2]: the
# event type, ARGV[3]: its field.  Returns the new number.
CHANGE_AND_PUBLISH = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[2], 't' .. cjson.encode({type = ARGV[2], [ARGV[3]] = n}))
return n
"""

logger = logging.getLogger("examples.hub_counter")


class Numbers:
    """The value and the users online: in Redis when the hub uses Redis,
    else in this process (memory://)."""

    def __init__(self, hub: asgiws.Hub) -> None:
        self.hub = hub
        self.local = {VALUE_KEY: 0, USERS_KEY: 0}
        self.redis = None
        if not HUB_URL.startswith("memory:"):
            import redis.asyncio as aioredis

            self.redis = aioredis.Redis.from_url(HUB_URL)

    async def change(self, key: str, delta: int, kind: str, field: str) -> None:
        if self.redis is not None:
            await self.redis.eval(CHANGE_AND_PUBLISH, 2, key, REDIS_CHANNEL, delta, kind, field)
            return
        self.local[key] += delta
        await self.hub.publish(CHANNEL, json.dumps({"type": kind, field: self.local[key]}))

    async def value(self) -> int:
        if self.redis is not None:
            return int(await self.redis.get(VALUE_KEY) or 0)
        return self.local[VALUE_KEY]

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with asgiws.Hub(HUB_URL) as hub:
        app.state.hub = hub
        app.state.numbers = Numbers(hub)
        try:
            yield
        finally:
            await app.state.numbers.close()


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(INDEX_HTML)


async def status(request: Request) -> JSONResponse:
    hub: asgiws.Hub = request.app.state.hub
    return JSONResponse({"connected": hub.connected, "members": hub.members(CHANNEL)})


async def counter(websocket: WebSocket) -> None:
    hub: asgiws.Hub = websocket.app.state.hub
    numbers: Numbers = websocket.app.state.numbers
    await websocket.accept()
    await hub.join(CHANNEL, websocket)
    await numbers.change(USERS_KEY, 1, "users", "count")
    try:
        await websocket.send_text(json.dumps({"type": "value", "value": await numbers.value()}))
        while True:
            try:
                event = json.loads(await websocket.receive_text())
                action = event["action"]
            except (ValueError, TypeError, KeyError):
                logger.error("unsupported event")
                continue
            if action in ("plus", "minus"):
                await numbers.change(VALUE_KEY, 1 if action == "plus" else -1, "value", "value")
            else:
                logger.error("unsupported action: %r", action)
    except WebSocketDisconnect:
        pass
    finally:
        await hub.leave(CHANNEL, websocket)
        await numbers.change(USERS_KEY, -1, "users", "count")


app = Starlette(
    routes=[
        Route("/", page),
        Route("/status", status),
        WebSocketRoute("/ws/counter", counter),
    ],
    lifespan=lifespan,
)
