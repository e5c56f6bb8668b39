"""Small raw ASGI apps for tests, served by `asgiws tests.apps:NAME`.

Raw ASGI (no framework) so that a test sees exactly the messages the server
produces. Every app answers lifespan so `--lifespan auto|on` works with all.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from asgiws.types import Receive, Scope, Send


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive) -> bytes:
    """The whole request body; also consumes an early `http.disconnect`."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def echo_messages(receive: Receive, send: Send) -> None:
    """Accept, then send every text/bytes message back as it came, until disconnect."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        # An empty message is still a message: test for None, not for truthiness.
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket: echo text and bytes. HTTP: 200 "ok" for any request."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await echo_messages(receive, send)
    else:
        await read_body(receive)
        await respond(send, 200, b"ok")


def scope_summary(scope: Scope) -> dict[str, Any]:
    """The JSON-safe part of a scope, for tests that check what the server put in it."""
    summary: dict[str, Any] = {}
    for key, value in scope.items():
        if key == "headers":
            summary[key] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in value]
        elif isinstance(value, bytes):
            summary[key] = value.decode("latin-1")
        elif isinstance(value, (str, int, float, bool, type(None), list, tuple)):
            summary[key] = list(value) if isinstance(value, tuple) else value
        elif isinstance(value, dict) and key != "state":
            summary[key] = {k: v for k, v in value.items() if isinstance(v, (str, int, float))}
    return summary


async def scope_json(scope: Scope, receive: Receive, send: Send) -> None:
    """HTTP: the scope (and request body length) as JSON. WebSocket: the scope as first text."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    summary = scope_summary(scope)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(summary)})
        await wait_for_disconnect(receive)
        return
    summary["body_length"] = len(await read_body(receive))
    await respond(send, 200, json.dumps(summary).encode(), b"application/json")


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def deny(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket: refuse the handshake (close before accept -> HTTP 403). HTTP: 404."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})
    else:
        await read_body(receive)
        await respond(send, 404, b"not found")


async def crash(scope: Scope, receive: Receive, send: Send) -> None:
    """Raises on every HTTP request and WebSocket connection: the server must survive it."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    raise RuntimeError("the app failed on purpose")


# What the last WebSocket client's disconnect carried, served back over HTTP
# by `protocol` so a test can see both directions of a close through one port.
LAST_DISCONNECT: dict[str, Any] = {}
DISCONNECT_SEEN = asyncio.Event()


async def protocol(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket behaviour chosen by path, for end-to-end tests of the CLI server.

    - `/subprotocol`: accept with the client's first subprotocol and a custom header;
    - `/close/CODE`: accept, then close with CODE and reason "by server";
    - `/refuse`: deny with an HTTP 401 response (websocket.http.response);
    - anything else: echo, recording the client's close code and reason;
    - HTTP `GET /last-disconnect`: that record as JSON, once there is one
      (waits up to 5 s for it); other HTTP: 200 "ok".
    """
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    if scope["type"] == "http":
        await read_body(receive)
        if path == "/last-disconnect":
            await asyncio.wait_for(DISCONNECT_SEEN.wait(), 5)
            await respond(send, 200, json.dumps(LAST_DISCONNECT).encode(), b"application/json")
        else:
            await respond(send, 200, b"ok")
        return
    await receive()  # websocket.connect
    if path == "/subprotocol":
        offered = scope["subprotocols"]
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-chosen-by", b"app")],
            }
        )
        await wait_for_disconnect(receive)
    elif path.startswith("/close/"):
        await send({"type": "websocket.accept"})
        code = int(path.rsplit("/", 1)[1])
        await send({"type": "websocket.close", "code": code, "reason": "by server"})
    elif path == "/refuse":
        body = b"no entry"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-length", b"%d" % len(body)), (b"www-authenticate", b"x")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                LAST_DISCONNECT.clear()
                LAST_DISCONNECT.update(code=message["code"], reason=message.get("reason", ""))
                DISCONNECT_SEEN.set()
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


async def numbered(scope: Scope, receive: Receive, send: Send) -> None:
    """For the process tests (`--workers`, `--limit-max-requests`).

    HTTP: the serving process's pid.  WebSocket `/stream/NAME`: the pid as
    first message, then "1", "2", ... every 20 ms until the connection ends;
    then prints "stream NAME sent N", N the messages whose send() returned
    (the ones the server took), so a test can check every one arrived.
    """
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    pid = str(os.getpid())
    if scope["type"] == "http":
        await read_body(receive)
        await respond(send, 200, pid.encode())
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": pid})
    name = scope["path"].rsplit("/", 1)[-1]
    sent = 0
    try:
        while True:
            await send({"type": "websocket.send", "text": str(sent + 1)})
            sent += 1
            await asyncio.sleep(0.02)
    except OSError:  # ClientDisconnected: the connection closed
        pass
    finally:
        print(f"stream {name} sent {sent}", flush=True)
