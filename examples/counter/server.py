#!/usr/bin/env python
"""The guide's counter: + and - buttons, one value shared by every page, "N users online".

    python examples/counter/server.py [PORT]    # PORT also from $PORT; default 8765

then open http://127.0.0.1:8765/ in several windows: the page and the
WebSocket share the port (`process_request` answers plain HTTP requests).

Messages, as in the guide: the page sends {"action": "plus"} or
{"action": "minus"}; the server sends {"type": "value", "value": N} and
{"type": "users", "count": N}, to everyone at once with `broadcast()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import os
import sys
from pathlib import Path

import asgiws

HOST = "127.0.0.1"
INDEX_HTML = Path(__file__).with_name("index.html").read_bytes()

logging.basicConfig()
logger = logging.getLogger("counter")

USERS: set[asgiws.WebSocketConnection] = set()
VALUE = 0


def users_event() -> str:
    return json.dumps({"type": "users", "count": len(USERS)})


def value_event() -> str:
    return json.dumps({"type": "value", "value": VALUE})


def serve_page(
    path: str, request_headers: asgiws.Headers
) -> tuple[http.HTTPStatus, list[tuple[str, str]], bytes] | None:
    """Answer plain HTTP requests with the page; let WebSocket upgrades through."""
    if request_headers.get("Upgrade", "").lower() == "websocket":
        return None
    if path != "/":
        return http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"Not Found\n"
    return http.HTTPStatus.OK, [("Content-Type", "text/html; charset=utf-8")], INDEX_HTML


async def counter(websocket: asgiws.WebSocketConnection) -> None:
    global VALUE
    # Register the user; everyone (the newcomer too) learns the new count.
    USERS.add(websocket)
    asgiws.broadcast(USERS, users_event())
    try:
        await websocket.send(value_event())
        # Each message is one click; the loop ends when the page goes away.
        async for message in websocket:
            try:
                event = json.loads(message)
                action = event["action"]
            except (ValueError, TypeError, KeyError):
                logger.error("unsupported event: %r", message)
                continue
            if action == "minus":
                VALUE -= 1
                asgiws.broadcast(USERS, value_event())
            elif action == "plus":
                VALUE += 1
                asgiws.broadcast(USERS, value_event())
            else:
                logger.error("unsupported event: %r", event)
    finally:
        # Unregister, whether the page closed or the connection broke.
        USERS.remove(websocket)
        asgiws.broadcast(USERS, users_event())


async def main(port: int) -> None:
    async with asgiws.serve(counter, HOST, port, process_request=serve_page) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on http://{HOST}:{bound}/ (page) and ws://{HOST}:{bound}/", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
