"""ASGI apps for the operations tests (metrics, shutdown edges), served by
`asgiws tests.integration.ops_apps:app`.

HTTP: `/?status=N` answers with status N (even an invalid one).
WebSocket, by path:
- `/echo`: echo every message;
- `/deny`: close before accept (the server answers 403);
- `/deny-700`: a `websocket.http.response.start` with status 700;
- `/pending`: takes `websocket.connect`, prints "pending handshake" and
  waits for the connection to end without answering;
- `/flood`: sends 256 KiB messages until the client goes away;
- `/broadcast`: `asgiws.broadcast` one message to every connection that
  ever came to this path (closed ones included, which it skips).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from asgiws.asgi.websocket import CONNECTION_EXTENSION
from asgiws.broadcast import broadcast
from asgiws.types import Receive, Scope, Send
from tests.apps import echo_messages, lifespan, read_body, respond

BROADCAST_MEMBERS: list[Any] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "http":
        await read_body(receive)
        query = parse_qs(scope["query_string"].decode())
        status = int(query.get("status", ["200"])[0])
        await respond(send, status, b"status %d" % status)
    else:
        await websocket(scope, receive, send)


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path == "/echo":
        await echo_messages(receive, send)  # takes websocket.connect itself
        return
    if path == "/pending":
        await receive()  # websocket.connect
        print("pending handshake", flush=True)
        await receive()  # returns once the connection ended
        return
    await receive()  # websocket.connect
    if path == "/deny":
        await send({"type": "websocket.close", "code": 1008})
    elif path == "/deny-700":
        await send({"type": "websocket.http.response.start", "status": 700, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"never"})
    elif path == "/flood":
        await send({"type": "websocket.accept"})
        chunk = b"x" * 256 * 1024
        while True:
            await send({"type": "websocket.send", "bytes": chunk})
    elif path == "/broadcast":
        BROADCAST_MEMBERS.append(scope["extensions"][CONNECTION_EXTENSION])
        await send({"type": "websocket.accept"})
        broadcast(BROADCAST_MEMBERS, "news")
        while (await receive())["type"] != "websocket.disconnect":
            pass
    else:
        await send({"type": "websocket.close", "code": 1008})

