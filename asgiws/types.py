"""Types shared by the layers: ASGI callables, the parsed request head, and
the per-server state that every connection registers with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from asgiws.config import Config
    from asgiws.connection.options import ConnectionOptions
    from asgiws.connection.writer import Burst
    from asgiws.http.protocol import FreshConnections
    from asgiws.observer import Observer
    from asgiws.proxy_headers import TrustedProxies

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = list[tuple[bytes, bytes]]
"""Header list as ASGI wants it: names lower-cased, raw bytes."""


class RequestHead(NamedTuple):
    """A parsed HTTP/1.1 request line and headers.

    The HTTP layer builds it once; the WebSocket upgrade takes it as is and
    never re-parses the request.  A named tuple: immutable, and built in a
    third of a frozen dataclass's time (one per request).
    """

    method: str
    raw_path: bytes  # the target without the query string, percent-encoded
    path: str  # percent-decoded, UTF-8
    query_string: bytes
    http_version: str  # "1.0" or "1.1"
    headers: Headers  # lower-cased names


class ManagedConnection(Protocol):
    """What the server needs from any live connection to shut it down."""

    def shutdown(self) -> None:
        """Begin a graceful close: finish the current request / close WS 1012."""


class ConnectionRegistry(set["ManagedConnection"]):
    """The live connections of one server.

    A plain set, plus a way to await the moment it becomes empty, so that
    graceful shutdown waits on an event instead of polling."""

    def __init__(self) -> None:
        super().__init__()
        self._empty_waiters: list[asyncio.Future[None]] = []

    def discard(self, conn: object) -> None:
        super().discard(conn)
        if not self:
            self._wake()

    def remove(self, conn: ManagedConnection) -> None:
        super().remove(conn)
        if not self:
            self._wake()

    def _wake(self) -> None:
        waiters, self._empty_waiters = self._empty_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_empty(self) -> None:
        """Return once no connection is registered."""
        if not self:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._empty_waiters.append(waiter)
        await waiter


async def app_not_loaded(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands in for the app until the server has loaded it."""
    raise RuntimeError("ServerState.app is not set: Server.load() (or startup()) loads the app")


@dataclass(slots=True)
class ServerState:
    """Shared by every connection of one server: the loaded app, what graceful
    shutdown needs, and the lifespan `state` copied into each scope."""

    app: ASGIApp = app_not_loaded
    """The ASGI callable that `Server.load()` resolved from `Config.app`."""
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    task_done: Callable[[asyncio.Task[None]], None] = field(init=False, repr=False)
    """`tasks.discard`, bound once: every app task's done callback (a bound
    method made per task would live as long as the task, 80 bytes each)."""
    lifespan_state: dict[str, Any] = field(default_factory=dict)
    total_requests: int = 0
    default_headers: Headers = field(default_factory=list)
    """Server/Date/custom headers for responses; the server refreshes Date every second."""
    shutting_down: bool = False
    observer: Observer | None = None
    """Who hears what connections report (`asgiws.observer.combine`); None
    when nobody subscribed, so a report costs one test."""
    trusted_proxies: TrustedProxies | None = None
    """Peers whose proxy headers count, built by `Server.load()` from
    `--forwarded-allow-ips`; None with `--no-proxy-headers`."""
    ws_options: ConnectionOptions | None = None
    """What every WebSocket connection of this server runs with, built from
    `Config` once by `Server.load()`."""
    ws_protocol: Callable[..., Any] | None = None
    """Makes the server side's connection objects (`serve(create_protocol=...)`);
    None: the ASGI face's own class."""
    fresh_connections: FreshConnections | None = None
    """The connections that have not started a request yet, under one
    keep-alive timer (`asgiws.http.protocol.FreshConnections`), made by the
    first connection."""
    handshake_burst: Burst | None = None
    """Where the opening handshakes' 101 responses of a loop turn wait to be
    written together (`asgiws.connection.writer.Burst`), made by
    `Server.startup` on its loop; None: each is written at once."""

    def __post_init__(self) -> None:
        self.task_done = self.tasks.discard


@dataclass(slots=True)
class ConnectionInfo:
    """Addresses and scheme of one accepted transport, captured once at connection_made."""

    client: tuple[str, int] | None
    server: tuple[str, int] | None
    is_tls: bool
    trusted_proxy: bool = False
    """The peer is a trusted proxy (`--forwarded-allow-ips`): the scope builder
    reads its X-Forwarded-*/Forwarded headers (`asgiws.proxy_headers`)."""


@dataclass(slots=True)
class ConnectionContext:
    """What a protocol object is built with: the loaded config, the server's
    shared state and this transport's addresses."""

    config: Config
    server_state: ServerState
    info: ConnectionInfo
