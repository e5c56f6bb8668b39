"""`serve(handler, host, port, **options)`: the websockets-library server API.

It is a thin face over the ASGI server: `HandlerApp` is an ASGI app that asks
the connection object (a `WebSocketServerProtocol`, or the subclass given as
`create_protocol`) for `process_request` and `select_subprotocol`, accepts
with the extra headers, then hands the connection object itself to
`handler(websocket)`.  Everything else (handshake, engine, flow control,
keepalive, shutdown) is the same code that serves Starlette apps.

Logging follows websockets under asgiws' names: "server listening on ...",
"connection open", "connection closed" at INFO and every frame at DEBUG on
the `asgiws.server` logger (or the `logger=` given), with
`extra={"websocket": connection}` on each record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import inspect
import logging
import os
import socket
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any

from asgiws.asgi.websocket import CONNECTION_EXTENSION
from asgiws.connection import ConnectionOptions
from asgiws.datastructures import Headers, encode_headers
from asgiws.exceptions import AbortHandshake
from asgiws.extensions.negotiation import server_factories
from asgiws.extensions.permessage_deflate import deflate_options_of
from asgiws.listeners import bind_addresses, listen_sockets, running_uvloop
from asgiws.options import config_from_handler_options
from asgiws.protocol import (
    HTTPResponse,
    ProcessRequest,
    SelectSubprotocol,
    WebSocketServerProtocol,
)
from asgiws.server import Server
from asgiws.types import Message, Receive, Scope, Send

__all__ = ["HandlerApp", "WebSocketServer", "bind_sockets", "serve", "unix_serve"]

logger = logging.getLogger("asgiws.server")

Handler = Callable[..., Any]
ExtraHeaders = Any  # HeadersLike | Callable[[str, Headers], HeadersLike]
ProtocolFactory = Callable[..., WebSocketServerProtocol]

GOING_AWAY = 1001

# Keywords of loop.create_server() that serve() passes on (websockets' **kwds).
SOCKET_OPTIONS = frozenset({"family", "flags", "reuse_address", "reuse_port"})


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


def request_target(scope: Scope) -> str:
    """The request target as the client sent it, query string included
    (websockets' `path`): `/chat?token=abc`, with %-escapes left as they are."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    target = raw + b"?" + query if query else raw
    # websockets decodes the request line this way too.
    return target.decode("ascii", "surrogateescape")


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
        create_protocol: ProtocolFactory | None = None,
    ) -> None:
        self.handler = handler
        self.pass_path = _takes_path(handler)
        self.subprotocols = list(subprotocols or [])
        self.select_subprotocol = select_subprotocol
        self.extra_headers = extra_headers
        self.process_request = process_request
        self.create_protocol: ProtocolFactory = create_protocol or WebSocketServerProtocol
        # Set by serve() once the server has built them: a plain HTTP request
        # is asked about through a protocol object of its own.
        self.connection_options: ConnectionOptions | None = None
        # The accepted connections, from accept until closed: what
        # `WebSocketServer.connections` (and so `broadcast()`) sees.
        self.connections: set[WebSocketServerProtocol] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, send)
        # lifespan: nothing to start or stop; returning tells the server so.

    def _prepare(self, conn: Any) -> WebSocketServerProtocol:
        if not isinstance(conn, WebSocketServerProtocol):
            raise TypeError(
                f"create_protocol made a {type(conn).__name__}, "
                "not a WebSocketServerProtocol subclass"
            )
        conn.ws_process_request = self.process_request
        conn.ws_select_subprotocol = self.select_subprotocol
        return conn

    @staticmethod
    async def _answer_request(conn: WebSocketServerProtocol, path: str) -> HTTPResponse | None:
        try:
            return await conn.process_request(path, conn.request_headers)
        except AbortHandshake as exc:
            return exc.status, exc.headers, exc.body

    async def _http(self, scope: Scope, send: Send) -> None:
        # A plain HTTP request to a WebSocket server: process_request may answer
        # it (health checks); otherwise 426, as the websockets library does.
        assert self.connection_options is not None, "serve() sets the options"
        probe = self._prepare(self.create_protocol(self.connection_options))
        probe.path = request_target(scope)
        probe.request_headers = Headers(scope["headers"])
        response = await self._answer_request(probe, probe.path)
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
        conn = self._prepare(scope["extensions"][CONNECTION_EXTENSION])
        path = conn.path = request_target(scope)
        response = await self._answer_request(conn, path)
        if response is not None:
            await _send_response(send, "websocket.http.response", response)
            return
        offered: list[str] = scope.get("subprotocols", [])
        subprotocol = conn.select_subprotocol(offered, self.subprotocols)
        accept: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if self.extra_headers is not None:
            extra = self.extra_headers
            if callable(extra):
                extra = extra(path, conn.request_headers)
            accept["headers"] = encode_headers(extra, lowercase=True)
        await send(accept)
        self.connections.add(conn)
        conn.logger.info("connection open")
        try:
            try:
                if self.pass_path:
                    await self.handler(conn, path)
                else:
                    await self.handler(conn)
            except Exception:
                conn.logger.error("connection handler failed", exc_info=True)
                await conn.close(1011, "")
            else:
                await conn.close()
        finally:
            self.connections.discard(conn)


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
    """A running `serve()`: `sockets`, `connections`, `close()`,
    `wait_closed()`, `serve_forever()`."""

    def __init__(
        self,
        server: Server,
        connections: set[WebSocketServerProtocol],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
    ) -> None:
        self.server = server
        self.logger = logger
        self._connections = connections
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    @property
    def sockets(self) -> list[socket.socket]:
        return self.server.sockets

    @property
    def connections(self) -> set[WebSocketServerProtocol]:
        """The open WebSocket connections (what `broadcast()` takes)."""
        return set(self._connections)

    def is_serving(self) -> bool:
        return self._closing is None

    def close(self) -> None:
        """Stop accepting, close every connection with 1001 (going away)."""
        if self._closing is None:
            self.logger.info("server closing")
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        try:
            await self.server.shutdown()
        finally:
            self.logger.info("server closed")
            if not self._closed.done():
                self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        """Serve until `close()` (from another task or a signal handler);
        cancelling it closes the server, as asyncio's serve_forever does."""
        try:
            await self.wait_closed()
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

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


async def bind_sockets(
    host: str | Sequence[str] | None,
    port: int | None,
    *,
    per_address: int = 1,
    family: int = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
) -> list[socket.socket]:
    """Bound (not yet listening) TCP sockets, as `loop.create_server` binds
    them: every address `host` resolves to (every interface for None or ""),
    SO_REUSEADDR on POSIX unless `reuse_address=False`, SO_REUSEPORT when
    asked, IPv6 sockets IPv6-only so that IPv4 gets its own; `per_address`
    of them per address (`asgiws.listeners`)."""
    loop = asyncio.get_running_loop()
    hosts: list[str | None]
    if host is None or host == "":
        hosts = [None]
    elif isinstance(host, str):
        hosts = [host]
    else:
        hosts = list(host)
    infos: list[Any] = []
    for name in hosts:
        for info in await loop.getaddrinfo(
            name, port or 0, family=family, type=socket.SOCK_STREAM, flags=flags
        ):
            if info not in infos:
                infos.append(info)
    return bind_addresses(
        infos,
        per_address,
        reuse_address=os.name == "posix" if reuse_address is None else reuse_address,
        reuse_port=bool(reuse_port),
    )


def _address(sock: socket.socket) -> str:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return str(name)
    if sock.family == socket.AF_INET6:
        return f"[{name[0]}]:{name[1]}"
    return f"{name[0]}:{name[1]}"


class serve:  # the websockets name: used like a function
    """`async with serve(handler, host, port, **options) as server:` or
    `server = await serve(...)`.

    As websockets 10: `create_protocol`, `logger` (a Logger, an adapter or a
    logger's name), `compression`, `origins`, `subprotocols`,
    `select_subprotocol`, `extra_headers`, `server_header` (None: no
    header), `process_request`, `ping_interval`, `ping_timeout`,
    `close_timeout`, `max_size`, `max_queue`, `read_limit`, `write_limit`,
    `ssl`, `extensions` (extension factories, see asgiws.extensions), and
    the socket keywords of `loop.create_server` (`sock`, `family`, `flags`,
    `backlog`, `reuse_address`, `reuse_port`).  `host=None` listens
    on every interface.  Any Config field is accepted as well.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        create_protocol: ProtocolFactory | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        extra_headers: ExtraHeaders | None = None,
        process_request: ProcessRequest | None = None,
        server_header: str | None = "asgiws",
        sock: socket.socket | None = None,
        extensions: Sequence[Any] | None = None,
        **options: Any,
    ) -> None:
        options.update(deflate_config(extensions))
        app = HandlerApp(
            handler,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            extra_headers=extra_headers,
            process_request=process_request,
            create_protocol=create_protocol,
        )
        socket_options = {k: options.pop(k) for k in SOCKET_OPTIONS if k in options}
        if "ws_per_message_deflate" in options:
            options.pop("compression", None)  # extensions= named the deflate settings
        options.setdefault("lifespan", "off")
        options.setdefault("ws_shutdown_close_code", GOING_AWAY)
        options.setdefault("access_log", False)
        options.setdefault("log_config", None)  # logging is the program's, as with websockets
        if "logger" not in options and "ws_logger" not in options:
            options["logger"] = logger
        if isinstance(host, str) and host:
            options.setdefault("host", host)
        options.setdefault("port", port if port is not None else 0)
        headers = list(options.pop("headers", []))
        if server_header != "asgiws":
            options["server_header"] = False
            if server_header is not None:
                headers.append(f"Server: {server_header}")
        config = config_from_handler_options(app=app, headers=headers, **options)
        self.server = Server(config)
        self.server.load()
        state = self.server.server_state
        state.ws_protocol = app.create_protocol
        if state.ws_options is not None:
            # Any extension but permessage-deflate: the factories negotiate as a chain.
            chain = server_factories(extensions, state.ws_options.deflate)
            state.ws_options = dataclasses.replace(state.ws_options, extensions=chain)
        app.connection_options = state.ws_options
        self.logger = config.ws_logger or logger
        self._app = app
        self._host = host
        self._sock = sock
        self._socket_options = socket_options
        self._ws_server: WebSocketServer | None = None

    async def _sockets(self) -> list[socket.socket] | None:
        """What to listen on; None: the server binds `uds` itself."""
        if self._sock is not None:
            return [self._sock]
        config = self.server.config
        if config.uds is not None:
            return None
        uvloop = running_uvloop(asyncio.get_running_loop())
        per_address = listen_sockets(config.listen_sockets, uvloop)
        return await bind_sockets(
            self._host, config.port, per_address=per_address, **self._socket_options
        )

    async def _start(self) -> WebSocketServer:
        server = self.server
        await server.startup(await self._sockets())
        if not server.started:
            raise OSError(f"cannot serve on {server.config.host}:{server.config.port}")
        # One line per address, as websockets logs it (a group shares one).
        for address in dict.fromkeys(map(_address, server.sockets)):
            self.logger.info("server listening on %s", address)
        self._ws_server = WebSocketServer(server, self._app.connections, self.logger)
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


def deflate_config(extensions: Sequence[Any] | None) -> dict[str, Any]:
    """The Config fields a `ServerPerMessageDeflateFactory` in `extensions=`
    stands for (its settings win over `compression=`)."""
    found = deflate_options_of(extensions)
    if found is None:
        return {}
    return {
        "ws_per_message_deflate": True,
        "ws_deflate_level": found.level,
        "ws_deflate_mem_level": found.mem_level,
        "ws_deflate_server_max_window_bits": found.server_max_window_bits,
        "ws_deflate_client_max_window_bits": found.client_max_window_bits,
        "ws_deflate_server_no_context_takeover": found.server_no_context_takeover,
        "ws_deflate_client_no_context_takeover": found.client_no_context_takeover,
    }


def unix_serve(handler: Handler, path: str | None = None, **options: Any) -> serve:
    """`serve()` on a UNIX domain socket at `path` (or on the bound UNIX
    socket given as `sock=`)."""
    if path is not None:
        options["uds"] = path
    return serve(handler, **options)
