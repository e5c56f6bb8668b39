"""The WebSocket handshake timeout: an app that leaves websocket.connect
unanswered loses the connection `ws_handshake_timeout` after the request
arrived, each handshake counted from its own arrival (the server's
handshakes share one timer); an app that answers in time, in its first
step or later, keeps its WebSocket past the timeout."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect

from asgiws.types import Receive, Scope, Send
from tests.integration.test_asgi_websocket import handshake_request, ws_url
from tests.unit.http_helpers import TIMEOUT, serve_http

TIMEOUT_S = 0.4


async def test_each_unanswered_handshake_gets_the_whole_timeout_from_its_arrival() -> None:
    never = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await never.wait()

    loop = asyncio.get_running_loop()
    async with serve_http(app, ws_handshake_timeout=TIMEOUT_S) as server:
        first_at = loop.time()
        first, first_writer = await asyncio.open_connection("127.0.0.1", server.port)
        first_writer.write(handshake_request())
        await asyncio.sleep(0.25)
        second_at = loop.time()
        second, second_writer = await asyncio.open_connection("127.0.0.1", server.port)
        second_writer.write(handshake_request())

        assert await asyncio.wait_for(first.read(), TIMEOUT) == b""  # dropped, no answer
        assert TIMEOUT_S - 0.05 <= loop.time() - first_at < 3
        assert not second.at_eof()  # its own time is not up yet
        assert await asyncio.wait_for(second.read(), TIMEOUT) == b""
        assert TIMEOUT_S - 0.05 <= loop.time() - second_at < 3
        for writer in (first_writer, second_writer):
            writer.close()


async def test_an_app_that_accepts_in_time_keeps_its_websocket_past_the_timeout() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if scope["path"] == "/late":
            await asyncio.sleep(TIMEOUT_S / 2)  # answers later than its first step
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    async with serve_http(app, ws_handshake_timeout=TIMEOUT_S) as server:
        async with connect(ws_url(server, "/now")) as now, connect(ws_url(server, "/late")) as late:
            await asyncio.sleep(TIMEOUT_S * 1.5)
            for ws in (now, late):
                await ws.send("still open")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "still open"
