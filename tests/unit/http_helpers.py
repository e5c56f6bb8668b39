"""Helpers for the HTTP layer tests: a server made of `HttpProtocol` alone
(wired as `Server` wires it: the ASGI WebSocket upgrade, the access log as
an observer), and a minimal raw HTTP/1.1 response reader for socket-level
tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from asgiws.access_log import AccessLog
from asgiws.asgi.websocket import upgrade as asgi_upgrade
from asgiws.config import Config
from asgiws.http.protocol import HttpProtocol, UpgradeHandler
from asgiws.observer import HandshakeRefused, HttpRequestDone, Observer, combine
from asgiws.options import connection_options
from asgiws.types import ASGIApp, ConnectionContext, ConnectionInfo, ServerState

PARSERS = ["h11", "httptools"]
TIMEOUT = 5.0
DEFAULT_HEADERS = [(b"server", b"asgiws"), (b"date", b"Mon, 24 Nov 2025 12:00:00 GMT")]


def make_context(
    app: ASGIApp, state: ServerState | None = None, **options: Any
) -> ConnectionContext:
    config = Config(app=app, **options)
    if state is None:
        state = ServerState(default_headers=list(DEFAULT_HEADERS))
    state.app = app
    state.ws_options = connection_options(config)
    return ConnectionContext(config, state, ConnectionInfo(None, None, False))


class RecordingObserver(Observer):
    """Keeps what the server reports, for a test to read."""

    def __init__(self) -> None:
        self.requests: list[HttpRequestDone] = []
        self.refusals: list[HandshakeRefused] = []
        self._reported = asyncio.Event()

    def http_request_done(self, event: HttpRequestDone) -> None:
        self.requests.append(event)
        self._reported.set()

    def handshake_refused(self, event: HandshakeRefused) -> None:
        self.refusals.append(event)
        self._reported.set()

    async def wait_for(self, count: int, reports: list[Any]) -> None:
        """Until `reports` (one of the lists above) holds `count` events."""

        async def wait() -> None:
            while len(reports) < count:
                self._reported.clear()
                await self._reported.wait()

        await asyncio.wait_for(wait(), TIMEOUT)


@dataclass
class RunningServer:
    port: int
    state: ServerState
    config: Config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve_http(
    app: ASGIApp,
    state: ServerState | None = None,
    *,
    upgrade: UpgradeHandler = asgi_upgrade,
    observer: Observer | None = None,
    **options: Any,
) -> AsyncIterator[RunningServer]:
    """`observer` hears what the server reports, beside the access log
    (subscribed when `access_log` is on, its default)."""
    ctx = make_context(app, state, **options)
    subscribers: list[Observer] = [AccessLog()] if ctx.config.access_log else []
    if observer is not None:
        subscribers.append(observer)
    ctx.server_state.observer = combine(subscribers)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(ConnectionContext(ctx.config, ctx.server_state, ctx.info), upgrade),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield RunningServer(port, ctx.server_state, ctx.config)
    finally:
        server.close()
        for conn in list(ctx.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        for task in list(ctx.server_state.tasks):
            task.cancel()
        if ctx.server_state.tasks:
            await asyncio.wait(set(ctx.server_state.tasks), timeout=TIMEOUT)
        await server.wait_closed()


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> RawResponse:
    """Read one response: Content-Length, chunked, or until EOF framing."""

    async def read() -> RawResponse:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        response = RawResponse(status, headers, b"")
        if head_only or status < 200 or status in (204, 304):
            return response
        if response.header("transfer-encoding") == "chunked":
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            response.body = bytes(body)
        elif response.header("content-length") is not None:
            response.body = await reader.readexactly(int(response.header("content-length") or 0))
        else:
            response.body = await reader.read()
        return response

    return await asyncio.wait_for(read(), TIMEOUT)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes; fails the test if it does not."""
    return await asyncio.wait_for(reader.read(), TIMEOUT)


def request(method: str = "GET", path: str = "/", *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers]
    if body and not any(
        h.lower().startswith(("content-length", "transfer-encoding")) for h in headers
    ):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with method, path, query and body, so tests can tell requests apart."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} ".encode() + body
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))],
        }
    )
    await send({"type": "http.response.body", "body": text})
