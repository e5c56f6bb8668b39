#!/usr/bin/env python
"""show_time: every connected page shows the server's UTC time, pushed every 1-5 s.

    python examples/show_time/server.py [PORT]  # PORT also from $PORT; default 8765

then open http://127.0.0.1:8765/ : one port serves both the page (through
`process_request`, before any WebSocket handshake) and the WebSocket.

One task makes each time message and `broadcast()` sends it to every
connection, as in the guide's show_time_2.py: one message encoded once, not
one loop per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http
import os
import random
import sys
from pathlib import Path

import asgiws

HOST = "127.0.0.1"
INDEX_HTML = Path(__file__).with_name("index.html").read_bytes()

CONNECTIONS: set[asgiws.WebSocketConnection] = set()


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def serve_page(
    path: str, request_headers: asgiws.Headers
) -> tuple[http.HTTPStatus, list[tuple[str, str]], bytes] | None:
    """Answer plain HTTP requests with the page; let WebSocket upgrades through."""
    if request_headers.get("Upgrade", "").lower() == "websocket":
        return None
    if path != "/":
        return http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"Not Found\n"
    return http.HTTPStatus.OK, [("Content-Type", "text/html; charset=utf-8")], INDEX_HTML


async def register(websocket: asgiws.WebSocketConnection) -> None:
    # The time right away, so that a new page does not wait for the next tick.
    await websocket.send(utc_now())
    CONNECTIONS.add(websocket)
    try:
        await websocket.wait_closed()
    finally:
        CONNECTIONS.remove(websocket)


async def show_time() -> None:
    while True:
        asgiws.broadcast(CONNECTIONS, utc_now())
        await asyncio.sleep(random.uniform(1, 5))


async def main(port: int) -> None:
    async with asgiws.serve(register, HOST, port, process_request=serve_page) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on http://{HOST}:{bound}/ (page) and ws://{HOST}:{bound}/", flush=True)
        await show_time()


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
