"""Apps the security tests serve.

`recorder`: every HTTP request that reaches the app whole (head and complete
body) is appended as one JSON line to the file named by ASGIWS_TEST_RECORD,
so a test can prove that a refused request never got there.  `/health`
answers at once; WebSockets are accepted and echoed.
"""

from __future__ import annotations

import json
import os

from asgiws.types import Receive, Scope, Send
from tests.apps import echo_messages, lifespan, respond


async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await echo_messages(receive, send)
        return
    if scope["path"] == "/health":
        await respond(send, 200, b"ok")
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return  # the body broke off: not a request the app got
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    record = {
        "method": scope["method"],
        "path": scope["path"],
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "body": body.decode("latin-1"),
    }
    with open(os.environ["ASGIWS_TEST_RECORD"], "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    await respond(send, 200, b"ok")
