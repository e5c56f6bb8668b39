"""The app the deployment tests serve: the example app (examples/starlette_app:
`/health`, `WS /ws/echo`, ...) with one route more, `/whoami`, that says which
process answered and what it was told about the client.

`GET /whoami` answers, and `WS /whoami` sends as its first message, the JSON of
the scope (client, scheme, server, headers) plus the process id; the WebSocket
then stays open until the client or the server closes it.
"""

from __future__ import annotations

import json
import os

from asgiws.types import Receive, Scope, Send
from examples.starlette_app.app import app as example_app
from tests.apps import read_body, respond, scope_summary, wait_for_disconnect


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "lifespan" and scope["path"] == "/whoami":
        await whoami(scope, receive, send)
    else:
        await example_app(scope, receive, send)


async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
    summary = json.dumps({**scope_summary(scope), "pid": os.getpid()})
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": summary})
        await wait_for_disconnect(receive)
    else:
        await read_body(receive)
        await respond(send, 200, summary.encode(), b"application/json")
