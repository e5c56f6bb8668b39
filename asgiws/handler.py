"""`serve(handler, host, port, **options)`: the websockets-library server API.

It is a thin face over the ASGI server: `HandlerApp` is an ASGI app that
answers `process_request`, picks the subprotocol, accepts with the extra
headers, then hands the connection object itself to `handler(websocket)`.
Everything else (handshake, engine, flow control, keepalive, shutdown) is the
same code that serves Starlette apps.
"""

from __future__ import annotations

import asyncio
import http
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Any

from asgiws.asgi.websocket import CONNECTION_EXTENSION
from asgiws.connection import WebSocketConnection
from asgiws.datastructures import Headers, HeadersLike, encode_headers
from asgiws.options import config_from_handler_options
from asgiws.server import Server
from asgiws.types import Message, Receive, Scope, Send

__all__ = ["HandlerApp", "WebSocketServer", "serve"]

logger = logging.getLogger("asgiws.server")

Handler = Callable[..., Awaitable[Any]]
HTTPResponse = tuple[http.HTTPStatus | int, HeadersLike, bytes]
ProcessRequest = Callable[[str, Headers], HTTPResponse | Awaitable[HTTPResponse | None] | None]
SelectSubprotocol = Callable[[Sequence[str], Sequence[str]], str | None]
ExtraHeaders = HeadersLike | Callable[[str, Headers], HeadersLike]

GOING_AWAY = 1001


def _takes_path(handler: Handler) -> bool:
    """websockets before 10.1 called handler(websocket, path); accept both shapes."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
    ]
    return len(positional) >= 2


class HandlerApp:
    """The ASGI app behind `serve()`: one WebSocket handler, optional HTTP answers."""

    def __init__(
        self,
        handler: Handler,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        extra_headers: ExtraHeaders | None = None,
        process_request: ProcessRequest | None = None,
    ) -> None:
        self.handler = handler
        self.pass_path = _takes_path(handler)
        self.subprotocols = list(subprotocols or [])
        self.select_subprotocol = select_subprotocol
        self.extra_headers = extra_headers
        self.process_request = process_request
        # The accepted connections, from accept until closed: what
        # `WebSocketServer.connections` (and so `broadcast()`) sees.
        self.connections: set[WebSocketConnection] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, send)
        # lifespan: nothing to start or stop; returning tells the server so.

    async def _answer_request(self, scope: Scope) -> HTTPResponse | None:
        if self.process_request is None:
            return None
        result = self.process_request(scope["path"], Headers(scope["headers"]))
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _http(self, scope: Scope, send: Send) -> None:
        # A plain HTTP request to a WebSocket server: process_request may answer
        # it (health checks); otherwise 426, as the websockets library does.
        response = await self._answer_request(scope)
        if response is None:
            response = (
                http.HTTPStatus.UPGRADE_REQUIRED,
                [("Upgrade", "websocket"), ("Content-Type", "text/plain")],
                b"Failed to open a WebSocket connection: this server only speaks WebSocket.\n",
            )
        await _send_response(send, "http.response", response)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "websocket.connect"
        response = await self._answer_request(scope)
        if response is not None:
            await _send_response(send, "websocket.http.response", response)
            return
        offered: list[str] = scope.get("subprotocols", [])
        subprotocol = self._pick_subprotocol(offered)
        accept: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if self.extra_headers is not None:
            extra = self.extra_headers
            if callable(extra):
                extra = extra(scope["path"], Headers(scope["headers"]))
            accept["headers"] = encode_headers(extra, lowercase=True)
        await send(accept)
        conn: WebSocketConnection = scope["extensions"][CONNECTION_EXTENSION]
        self.connections.add(conn)
        try:
            try:
                if self.pass_path:
                    await self.handler(conn, scope["path"])
                else:
                    await self.handler(conn)
            except Exception:
                conn.logger.error("connection handler failed", exc_info=True)
                await conn.close(1011, "")
            else:
                await conn.close()
        finally:
            self.connections.discard(conn)

    def _pick_subprotocol(self, offered: Sequence[str]) -> str | None:
        if self.select_subprotocol is not None:
            return self.select_subprotocol(offered, self.subprotocols)
        # The server's preference order wins, as in the websockets library.
        for candidate in self.subprotocols:
            if candidate in offered:
                return candidate
        return None


async def _send_response(send: Send, prefix: str, response: HTTPResponse) -> None:
    status, headers, body = response
    await send(
        {
            "type": f"{prefix}.start",
            "status": int(status),
            "headers": [
                *encode_headers(headers, lowercase=True),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": f"{prefix}.body", "body": body})


class WebSocketServer:
    """A running `serve()`: `sockets`, `close()`, `wait_closed()`, `serve_forever()`."""

    def __init__(self, server: Server, connections: set[WebSocketConnection]) -> None:
        self.server = server
        self._connections = connections
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    @property
    def sockets(self) -> list[socket.socket]:
        return self.server.sockets

    @property
    def connections(self) -> set[WebSocketConnection]:
        """The open WebSocket connections (what `broadcast()` takes)."""
        return set(self._connections)

    def close(self) -> None:
        """Stop accepting, close every connection with 1001 (going away)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        try:
            await self.server.shutdown()
        finally:
            if not self._closed.done():
                self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        await self.wait_closed()

    async def __aenter__(self) -> WebSocketServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()


class serve:  # the websockets name: used like a function
    """`async with serve(handler, host, port, **options) as server:` or
    `server = await serve(...)`.

    Options: the websockets names (`compression`, `origins`, `max_size`,
    `max_queue`, `ping_interval`, `ping_timeout`, `close_timeout`,
    `read_limit`, `write_limit`, `logger`, `ssl`) or any Config field,
    plus `subprotocols`, `select_subprotocol`, `extra_headers`,
    `process_request` and `server_header` (a string, or None for no header).
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None = None,
        port: int | None = None,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        extra_headers: ExtraHeaders | None = None,
        process_request: ProcessRequest | None = None,
        server_header: str | None = "asgiws",
        sock: socket.socket | None = None,
        **options: Any,
    ) -> None:
        app = HandlerApp(
            handler,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            extra_headers=extra_headers,
            process_request=process_request,
        )
        options.setdefault("lifespan", "off")
        options.setdefault("ws_shutdown_close_code", GOING_AWAY)
        options.setdefault("access_log", False)
        options.setdefault("host", host if host is not None else "127.0.0.1")
        options.setdefault("port", port if port is not None else 0)
        headers = list(options.pop("headers", []))
        if server_header != "asgiws":
            options["server_header"] = False
            if server_header is not None:
                headers.append(f"Server: {server_header}")
        config = config_from_handler_options(app=app, headers=headers, **options)
        self.server = Server(config)
        self._app = app
        self._sock = sock
        self._ws_server: WebSocketServer | None = None

    async def _start(self) -> WebSocketServer:
        await self.server.startup([self._sock] if self._sock is not None else None)
        if not self.server.started:
            raise OSError(f"cannot serve on {self.server.config.host}:{self.server.config.port}")
        self._ws_server = WebSocketServer(self.server, self._app.connections)
        return self._ws_server

    def __await__(self) -> Generator[Any, None, WebSocketServer]:
        return self._start().__await__()

    async def __aenter__(self) -> WebSocketServer:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ws_server is not None
        self._ws_server.close()
        await self._ws_server.wait_closed()
