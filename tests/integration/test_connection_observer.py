"""What a WebSocket connection reports to the server's observer, through a
real server and the websockets library as the client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import connect

from asgiws.broadcast import broadcast
from asgiws.config import Config
from asgiws.connection import WebSocketConnection
from asgiws.observer import (
    BroadcastSkipped,
    BroadcastSkipReason,
    ClosedBy,
    Observer,
    PingRoundTrip,
    WebSocketClosed,
    WebSocketOpened,
    WritesPaused,
)
from asgiws.server import Server
from asgiws.types import ASGIApp, Receive, Scope, Send
from tests.integration.test_asgi_websocket import echo

TIMEOUT = 5.0


class Recorder(Observer):
    """Every report, in order; `closed` resolves with the first WebSocketClosed."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.closed: asyncio.Future[WebSocketClosed] = asyncio.get_running_loop().create_future()

    def websocket_opened(self, event: WebSocketOpened) -> None:
        self.events.append(event)

    def websocket_closed(self, event: WebSocketClosed) -> None:
        self.events.append(event)
        if not self.closed.done():
            self.closed.set_result(event)

    def ping_round_trip(self, event: PingRoundTrip) -> None:
        self.events.append(event)

    def broadcast_skipped(self, event: BroadcastSkipped) -> None:
        self.events.append(event)

    def writes_paused(self, event: WritesPaused) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@contextlib.asynccontextmanager
async def observed_server(app: ASGIApp, **options: Any) -> AsyncIterator[tuple[int, Recorder]]:
    server = Server(Config(app=app, port=0, lifespan="off", access_log=False, **options))
    await server.startup()
    recorder = Recorder()
    # Connections read the observer when they are made: subscribing once the
    # server listens is early enough.
    server.server_state.observer = recorder
    try:
        yield server.sockets[0].getsockname()[1], recorder
    finally:
        server.should_exit = True
        await server.shutdown()


async def close_after_one_message(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    await send({"type": "websocket.close", "code": 4000, "reason": "done"})


async def raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that has completed the opening handshake and does nothing else by itself."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_a_client_initiated_close_reports_counts_code_and_peer() -> None:
    async with observed_server(echo) as (port, recorder):
        async with connect(f"ws://127.0.0.1:{port}/chat", compression=None) as ws:
            await ws.send("hé")  # 3 bytes of UTF-8
            assert await ws.recv() == "hé"
            await ws.send(b"xyz")
            assert await ws.recv() == b"xyz"
        closed = await asyncio.wait_for(recorder.closed, TIMEOUT)
    [opened] = recorder.of(WebSocketOpened)
    assert opened.path == "/chat" and opened.subprotocol is None
    assert opened.client is not None and opened.client[0] == "127.0.0.1"
    assert (closed.code, closed.reason, closed.closed_by) == (1000, "", ClosedBy.PEER)
    assert (closed.messages_in, closed.bytes_in) == (2, 6)
    assert (closed.messages_out, closed.bytes_out) == (2, 6)
    assert closed.path == "/chat" and closed.client == opened.client
    assert 0 <= closed.duration < TIMEOUT


async def test_a_server_initiated_close_reports_its_code_and_local() -> None:
    async with observed_server(close_after_one_message) as (port, recorder):
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("bye")
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        closed = await asyncio.wait_for(recorder.closed, TIMEOUT)
    # The client echoes our 4000: the peer's close frame carries it back.
    assert (closed.code, closed.closed_by) == (4000, ClosedBy.LOCAL)
    assert (closed.messages_in, closed.bytes_in, closed.messages_out) == (1, 3, 0)


async def test_the_peers_close_code_is_reported_when_the_two_differ() -> None:
    async def closer(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000})

    async with observed_server(closer) as (port, recorder):
        reader, writer = await raw_client(port)
        assert await reader.readexactly(4) == b"\x88\x02" + (4000).to_bytes(2, "big")
        # Masked (with a zero key) close frame with another code than ours.
        writer.write(b"\x88\x82\x00\x00\x00\x00" + (4001).to_bytes(2, "big"))
        closed = await asyncio.wait_for(recorder.closed, TIMEOUT)
        writer.close()
    assert (closed.code, closed.closed_by) == (4001, ClosedBy.LOCAL)


async def test_a_ping_answered_by_the_client_reports_its_round_trip() -> None:
    latencies: list[float] = []

    async def pinger(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        conn: WebSocketConnection = scope["extensions"]["asgiws.connection"]
        latencies.append(await asyncio.wait_for(await conn.ping(), TIMEOUT))
        await send({"type": "websocket.close"})

    async with observed_server(pinger) as (port, recorder):
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        await asyncio.wait_for(recorder.closed, TIMEOUT)
    [round_trip] = recorder.of(PingRoundTrip)
    assert round_trip.latency == latencies[0] > 0
    assert round_trip.client is not None


async def test_broadcast_messages_count_in_what_the_connection_reports() -> None:
    """broadcast() writes a shared frame straight to the transport for most
    connections; an observed one must still count what it was sent."""

    async def announce(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        conn: WebSocketConnection = scope["extensions"]["asgiws.connection"]
        assert broadcast([conn], "hé") == 1  # 3 bytes of UTF-8
        assert broadcast([conn], b"xyz") == 1
        await receive()  # the client's close

    async with observed_server(announce) as (port, recorder):
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            assert await ws.recv() == "hé"
            assert await ws.recv() == b"xyz"
        closed = await asyncio.wait_for(recorder.closed, TIMEOUT)
    assert (closed.messages_out, closed.bytes_out) == (2, 6)


async def test_a_slow_reader_reports_paused_writes_and_a_skipped_broadcast() -> None:
    results: list[int] = []

    async def flood(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        conn: WebSocketConnection = scope["extensions"]["asgiws.connection"]
        chunk = b"x" * 65536
        # Without an await: the peer reads nothing, so the kernel's buffers
        # fill, then the transport's, and the write limit is crossed.
        for _ in range(10_000):
            results.append(broadcast([conn], chunk))
            if results[-1] == 0:
                break
        conn.abort()

    async with observed_server(flood, ws_write_limit=65536) as (port, recorder):
        _, writer = await raw_client(port)  # never reads past the handshake
        await asyncio.wait_for(recorder.closed, TIMEOUT)
        writer.close()
    assert results[-1] == 0 and results[0] == 1
    assert len(recorder.of(WritesPaused)) == 1
    [skipped] = recorder.of(BroadcastSkipped)
    assert skipped.reason is BroadcastSkipReason.SLOW_READER
