"""Every WebSocket upgrade answered with something else than 101 reaches the
server's observer once, as `HandshakeRefused` with the status that went out;
and the access log (subscribed the way the server subscribes it) writes a
line for it."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from asgiws.types import Receive, Scope, Send
from tests.integration.test_asgi_websocket import echo, handshake_request, ws_url
from tests.unit.http_helpers import TIMEOUT, RecordingObserver, serve_http


async def refuse_by_closing(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.close", "code": 1008})


async def deny_with_401(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"who?"})


async def fail(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    raise RuntimeError("boom")


async def return_without_answering(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()


@pytest.mark.parametrize(
    ("app", "status", "reason"),
    [
        (refuse_by_closing, 403, "websocket.close before websocket.accept"),
        (deny_with_401, 401, "websocket.http.response"),
        (fail, 500, "app error"),
        (return_without_answering, 500, "without answering"),
    ],
    ids=["close-before-accept", "denial", "app-error", "no-answer"],
)
async def test_refusals_by_the_app(app: Any, status: int, reason: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="asgiws.access")
    observer = RecordingObserver()
    async with serve_http(app, observer=observer, root_path="/mount") as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, "/a%20b?x=1")):
                pass
        assert info.value.response.status_code == status
        await observer.wait_for(1, observer.refusals)
    (event,) = observer.refusals
    assert (event.path, event.status) == ("/mount/a b", status)
    assert reason in event.reason
    assert event.client is not None and event.client[0] == "127.0.0.1"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "asgiws.access"]
    # The access line names the status with its reason phrase, as uvicorn's does.
    assert line.endswith(f' - "WebSocket /mount/a%20b" {status} {HTTPStatus(status).phrase}')


@pytest.mark.parametrize(
    ("origin", "change", "status"),
    [
        ("https://good.example", (b"Version: 13", b"Version: 8"), 426),
        ("https://good.example", (b"Key: ", b"Key: x"), 400),
        ("https://evil.example", None, 403),
        # A list with empty elements around the token is a valid upgrade.
        ("https://good.example", (b"Upgrade: websocket", b"Upgrade: , websocket,"), 101),
    ],
    ids=["version", "key", "origin", "upgrade-list"],
)
async def test_refusals_of_the_handshake_itself(
    origin: str, change: tuple[bytes, bytes] | None, status: int
) -> None:
    observer = RecordingObserver()
    async with serve_http(echo, observer=observer, ws_origins=["https://good.example"]) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = handshake_request("/ws", f"Origin: {origin}")
        writer.write(head.replace(*change) if change else head)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    expected = [] if status == 101 else [("/ws", status)]
    assert [(event.path, event.status) for event in observer.refusals] == expected


async def test_handshake_timeout_is_a_refusal_without_a_response() -> None:
    never = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await never.wait()

    observer = RecordingObserver()
    async with serve_http(app, observer=observer, ws_handshake_timeout=0.1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(handshake_request())
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()
    assert [(event.status, event.reason) for event in observer.refusals] == [
        (0, "the app did not answer in time")
    ]


async def test_an_accepted_websocket_is_no_refusal() -> None:
    observer = RecordingObserver()
    async with serve_http(echo, observer=observer) as server:
        async with connect(ws_url(server)) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hi"
        async with serve_http(refuse_by_closing, observer=observer) as other:
            with pytest.raises(InvalidStatus):
                async with connect(ws_url(other)):
                    pass
            await observer.wait_for(1, observer.refusals)
    assert [event.status for event in observer.refusals] == [403]
