"""`--reload` against the real CLI: a change to a watched file restarts the
server on the same socket, and open WebSockets get 1012."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import StartServer

APP_SOURCE = '''
VERSION = {version!r}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({{"type": message["type"] + ".complete"}})
            if message["type"] == "lifespan.shutdown":
                return
    elif scope["type"] == "websocket":
        await receive()
        await send({{"type": "websocket.accept"}})
        await send({{"type": "websocket.send", "text": VERSION}})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    else:
        await receive()
        body = VERSION.encode()
        await send({{"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]}})
        await send({{"type": "http.response.body", "body": body}})
'''


def write_app(path: Path, version: str) -> None:
    path.write_text(APP_SOURCE.format(version=version))


async def test_a_changed_file_restarts_the_server_and_closes_websockets_with_1012(
    run_server: StartServer, tmp_path: Path
) -> None:
    module = tmp_path / "reloaded_app.py"
    write_app(module, "v1")
    (tmp_path / "notes.txt").write_text("not watched")
    server = run_server(
        "reloaded_app:app", "--reload", "--reload-dir", str(tmp_path),
        "--app-dir", str(tmp_path), "--reload-delay", "0.1",
    )
    server.wait_for_log("Application startup complete")
    assert httpx.get(server.url, timeout=5).text == "v1"
    async with connect(server.ws_url) as ws:
        assert await ws.recv() == "v1"
        # A file the filter leaves out changes nothing.
        (tmp_path / "notes.txt").write_text("still not watched")
        write_app(module, "v2")
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1012
    server.wait_for_log(r"WatchFiles detected changes in '.*reloaded_app\.py'\. Reloading")
    assert "notes.txt" not in server.logs()
    # The socket stayed open: a request waits in the backlog for the new server.
    deadline = time.monotonic() + 15
    while (text := httpx.get(server.url, timeout=10).text) != "v2":
        assert text == "v1" and time.monotonic() < deadline
    async with connect(server.ws_url) as ws:
        assert await ws.recv() == "v2"
