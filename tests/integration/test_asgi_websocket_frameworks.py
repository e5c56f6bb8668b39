"""The ASGI WebSocket face behind a real framework (Starlette), and the same
end-to-end scenarios on uvloop, whose transports are not asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from tests.integration import test_asgi_websocket as scenarios
from tests.unit.http_helpers import TIMEOUT, serve_http


def make_starlette_app(disconnects: list[tuple[int, str | None]]) -> Starlette:
    async def shout(websocket: WebSocket) -> None:
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="shout" if "shout" in offered else None)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message["code"], message.get("reason"))
                if message.get("text") is not None:
                    text = message["text"]
                    if text == "quit":
                        await websocket.close(4321, "asked to quit")
                        return
                    await websocket.send_text(text.upper())
                else:
                    await websocket.send_bytes(message["bytes"][::-1])
        except WebSocketDisconnect as exc:
            disconnects.append((exc.code, exc.reason))

    async def refuse(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    return Starlette(routes=[WebSocketRoute("/shout", shout), WebSocketRoute("/refuse", refuse)])


async def test_starlette_websocket_route() -> None:
    disconnects: list[tuple[int, str | None]] = []
    app = make_starlette_app(disconnects)
    async with serve_http(app) as server:
        url = f"ws://127.0.0.1:{server.port}"
        async with connect(url + "/shout", subprotocols=["shout"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "shout"
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "HI"
            await ws.send("")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == ""
            await ws.send(b"abc")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"cba"
            await ws.close(4000, "client leaving")
        async with connect(url + "/shout") as ws:
            await ws.send("quit")
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert (ws.close_code, ws.close_reason) == (4321, "asked to quit")
        await asyncio.wait_for(scenarios._wait_tasks(server), TIMEOUT)
    assert disconnects == [(4000, "client leaving")]


async def test_starlette_close_before_accept_is_403() -> None:
    from websockets.exceptions import InvalidStatus

    async with serve_http(make_starlette_app([])) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{server.port}/refuse"):
                pass
    assert info.value.response.status_code == 403


UVLOOP_SCENARIOS: list[Callable[[], Coroutine[Any, Any, None]]] = [
    scenarios.test_echo_text_and_binary_including_empty_messages,
    scenarios.test_first_frame_in_the_same_packet_as_the_handshake,
    scenarios.test_max_queue_pauses_reading_until_the_app_consumes,
    scenarios.test_a_client_that_never_answers_pings_is_closed_with_1011,
    scenarios.test_client_close_code_and_reason_reach_the_app,
]


@pytest.mark.parametrize("scenario", UVLOOP_SCENARIOS, ids=lambda f: f.__name__[5:])
def test_on_uvloop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
