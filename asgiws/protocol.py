"""The websockets 10 protocol classes: names to subclass, annotate and
`isinstance` against, and the hooks `serve(create_protocol=...)` and
`connect(create_protocol=...)` let a subclass override.

- `WebSocketCommonProtocol` is the connection class itself
  (`WebSocketConnection`): recv/send/ping/pong/close and the attributes.
- `WebSocketServerProtocol` is what a `serve()` handler receives. A subclass
  may override `process_request(path, request_headers)` (answer with an HTTP
  response instead of the handshake) and `select_subprotocol(client, server)`;
  by default they call the `process_request=` / `select_subprotocol=`
  arguments of `serve()`, as websockets does.
- `WebSocketClientProtocol` is what `connect()` returns.

A class passed as `create_protocol` (or a factory such as
`functools.partial(MyProtocol, ...)`) is called with the connection's own
arguments: `(options, **keywords)`; a subclass that defines `__init__` passes
them on with `super().__init__(*args, **kwargs)`.
"""

from __future__ import annotations

import http
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from asgiws.asgi.websocket import AsgiWebSocketConnection
from asgiws.connection import WebSocketConnection
from asgiws.datastructures import Headers, HeadersLike

if TYPE_CHECKING:
    from asgiws.exceptions import ConnectionClosed

__all__ = [
    "HTTPResponse",
    "ProcessRequest",
    "SelectSubprotocol",
    "WebSocketClientProtocol",
    "WebSocketCommonProtocol",
    "WebSocketServerProtocol",
]

HTTPResponse = tuple[http.HTTPStatus | int, HeadersLike, bytes]
"""What `process_request` returns to answer without a WebSocket."""
ProcessRequest = Callable[[str, Headers], HTTPResponse | Awaitable[HTTPResponse | None] | None]
SelectSubprotocol = Callable[[Sequence[str], Sequence[str]], str | None]

WebSocketCommonProtocol = WebSocketConnection
"""websockets' name for what both sides share: the connection class."""


class WebSocketServerProtocol(AsgiWebSocketConnection):
    """One connection accepted by `serve()`.

    `serve()` sets `ws_server_options` (its `process_request`,
    `select_subprotocol` and `subprotocols` arguments) before the hooks run.
    """

    __slots__ = ("ws_process_request", "ws_select_subprotocol")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ws_process_request: ProcessRequest | None = None
        self.ws_select_subprotocol: SelectSubprotocol | None = None

    async def process_request(self, path: str, request_headers: Headers) -> HTTPResponse | None:
        """Before the handshake (and for plain HTTP requests): return
        `(status, headers, body)` to answer with that response, or None to
        go on.  `path` is the request target as sent, query string included.
        Raising `AbortHandshake` has the same effect as returning a response.
        """
        hook = self.ws_process_request
        if hook is None:
            return None
        result = hook(path, request_headers)
        if inspect.isawaitable(result):
            result = await result
        return result

    def select_subprotocol(
        self, client_subprotocols: Sequence[str], server_subprotocols: Sequence[str]
    ) -> str | None:
        """The subprotocol to accept, or None.  The default calls serve()'s
        `select_subprotocol=` if given, else takes the first of the server's
        subprotocols (its order of preference) that the client offered."""
        hook = self.ws_select_subprotocol
        if hook is not None:
            return hook(client_subprotocols, server_subprotocols)
        for candidate in server_subprotocols:
            if candidate in client_subprotocols:
                return candidate
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        log_closed(self)


class WebSocketClientProtocol(WebSocketConnection):
    """One connection opened by `connect()`."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        log_closed(self)


def log_closed(connection: WebSocketConnection) -> None:
    """websockets' INFO line when the TCP connection of a WebSocket is gone
    (only for connections whose handshake completed)."""
    if not connection.handshake_done:
        return  # the handshake was refused or never finished: no WebSocket closed
    logger = connection.logger
    if logger.isEnabledFor(logging.INFO):
        closed: ConnectionClosed = connection.closed_exception()
        logger.info("connection closed: %s", closed)
