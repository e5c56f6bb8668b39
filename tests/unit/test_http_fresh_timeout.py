"""The keep-alive timeout also closes a connection that never starts a
request (a silent client, a slowloris head), counted from its accept, under
the server's one timer for such connections (`FreshConnections`); a
connection whose request started, or that became a WebSocket, is no longer
its business."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from .http_helpers import PARSERS, echo_app, open_raw, read_eof, read_response, request, serve_http


@pytest.fixture(params=PARSERS)
def http(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def closed_after(reader: asyncio.StreamReader, since: float) -> float:
    """Seconds from `since` to the server closing the connection."""
    assert await read_eof(reader) == b""
    return asyncio.get_running_loop().time() - since


async def test_a_silent_connection_is_closed_after_the_keep_alive_timeout(http: str) -> None:
    async with serve_http(echo_app, http=http, timeout_keep_alive=0.3) as srv:
        start = asyncio.get_running_loop().time()
        reader, writer = await open_raw(srv.port)
        assert 0.3 - 0.05 <= await closed_after(reader, start) < 3
        assert not srv.state.connections
        writer.close()


async def test_a_head_that_never_ends_is_closed_after_the_keep_alive_timeout(http: str) -> None:
    async with serve_http(echo_app, http=http, timeout_keep_alive=0.3) as srv:
        start = asyncio.get_running_loop().time()
        reader, writer = await open_raw(srv.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        assert 0.3 - 0.05 <= await closed_after(reader, start) < 3
        writer.close()


async def test_silent_connections_each_get_the_whole_timeout_from_their_accept(
    http: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with serve_http(echo_app, http=http, timeout_keep_alive=0.4) as srv:
        first_at = loop.time()
        first, first_writer = await open_raw(srv.port)
        await asyncio.sleep(0.25)
        second_at = loop.time()
        second, second_writer = await open_raw(srv.port)
        assert 0.4 - 0.05 <= await closed_after(first, first_at) < 3
        assert not second.at_eof()  # its own deadline is later
        assert 0.4 - 0.05 <= await closed_after(second, second_at) < 3
        # One that answered a request before goes by its own keep-alive timer.
        third, third_writer = await open_raw(srv.port)
        third_writer.write(request())
        assert (await read_response(third)).status == 200
        answered = loop.time()
        assert 0.4 - 0.05 <= await closed_after(third, answered) < 3
        for writer in (first_writer, second_writer, third_writer):
            writer.close()


async def test_a_request_that_outlasts_the_timeout_is_answered(http: str) -> None:
    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.5)
        await echo_app(scope, receive, send)

    async with serve_http(slow_app, http=http, timeout_keep_alive=0.2) as srv:
        reader, writer = await open_raw(srv.port)
        await asyncio.sleep(0.1)  # a tenth of a second silent, then the request
        writer.write(request("GET", "/late"))
        response = await read_response(reader)
        assert response.status == 200 and response.body.startswith(b"GET /late")
        writer.close()


async def test_a_websocket_outlives_the_keep_alive_timeout(http: str) -> None:
    async def ws_app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    async with serve_http(ws_app, http=http, timeout_keep_alive=0.2) as srv:
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/") as ws:
            await asyncio.sleep(0.5)
            await ws.send("still here")
            assert await ws.recv() == "still here"
