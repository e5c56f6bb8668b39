"""The one raw ASGI application every benchmarked server runs.

Raw ASGI (no framework) so that the numbers measure the server, not a
framework's routing, and so that the app behaves identically on every server.

Routes:
- HTTP ``GET`` (any path): ``Hello, world!`` as text/plain.
- WebSocket ``/broadcast?group=G``: a subscriber.  It is registered in group G
  and then only waits for the peer to leave.
- WebSocket ``/broadcast/control?group=G``: the control connection of group G.
  A text message ``count`` is answered with the number of subscribers
  currently registered (the load generator polls this so it never triggers
  before every subscriber is in).  A binary message is the trigger: the app
  sends exactly those bytes to every subscriber of G, one ``await send`` after
  another.  The load generator puts its send timestamp inside the trigger, so
  each delivery carries the time the fan-out was asked for.
- WebSocket, any other path (``/echo``, and ``/`` which kosoku uses for
  Autobahn): echo every message with its type.

Groups keep rounds independent: subscribers from a previous run that the
server has not finished tearing down cannot inflate the next run's count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HELLO = b"Hello, world!"
HELLO_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", str(len(HELLO)).encode()),
]

# group name -> the `send` callables of its subscribers.  One process, one
# event loop: servers are run with one worker, so a plain dict is enough.
SUBSCRIBERS: dict[str, set[Send]] = {}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await hello(send)
    elif kind == "websocket":
        path = scope["path"]
        if path == "/broadcast":
            await subscriber(group_of(scope), receive, send)
        elif path == "/broadcast/control":
            await control(group_of(scope), receive, send)
        else:
            await echo(receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)


async def hello(send: Send) -> None:
    # The request body of a GET is empty; not reading it keeps the app minimal
    # and is valid ASGI (the server discards what the app does not read).
    await send({"type": "http.response.start", "status": 200, "headers": HELLO_HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def echo(receive: Receive, send: Send) -> None:
    if not await accepted(receive, send):
        return
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def subscriber(group: str, receive: Receive, send: Send) -> None:
    if not await accepted(receive, send):
        return
    members = SUBSCRIBERS.setdefault(group, set())
    members.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
    finally:
        members.discard(send)
        if not members:
            SUBSCRIBERS.pop(group, None)


async def control(group: str, receive: Receive, send: Send) -> None:
    if not await accepted(receive, send):
        return
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        payload = message.get("bytes")
        if payload is None:
            count = len(SUBSCRIBERS.get(group, ()))
            await send({"type": "websocket.send", "text": str(count)})
            continue
        # Copy the set: a subscriber leaving mid fan-out must not break the loop.
        for member in tuple(SUBSCRIBERS.get(group, ())):
            try:
                await member({"type": "websocket.send", "bytes": payload})
            except Exception:  # a vanished subscriber is not an app error
                SUBSCRIBERS.get(group, set()).discard(member)


async def accepted(receive: Receive, send: Send) -> bool:
    message = await receive()
    if message["type"] != "websocket.connect":
        return False
    await send({"type": "websocket.accept"})
    return True


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def group_of(scope: Scope) -> str:
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    return query.get("group", [""])[0]
