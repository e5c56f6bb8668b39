"""The access log: an observer that writes one line per HTTP request and per
WebSocket handshake and closure to the `asgiws.access` logger.

HTTP lines are uvicorn's (`127.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK`),
so log tooling written for uvicorn reads them.  WebSocket lines follow the
same shape, with the path and the status of the handshake answer, and one
more line when the connection ends.
"""

from __future__ import annotations

import http
import logging
from urllib.parse import quote

from asgiws.observer import (
    Address,
    HandshakeRefused,
    HttpRequestDone,
    Observer,
    WebSocketClosed,
    WebSocketOpened,
)

logger = logging.getLogger("asgiws.access")


def format_client(client: Address) -> str:
    return f"{client[0]}:{client[1]}" if client else ""


def format_status(status: int) -> str:
    """`200 OK`, as uvicorn writes it; a code with no standard phrase stays bare."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def format_target(path: str, query_string: bytes = b"") -> str:
    target = quote(path)
    if query_string:
        target += "?" + query_string.decode("ascii", "replace")
    return target


class AccessLog(Observer):
    """Subscribed by the server when `--access-log` is on (the default)."""

    def http_request_done(self, event: HttpRequestDone) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                '%s - "%s %s HTTP/%s" %s',
                format_client(event.client),
                event.method,
                format_target(event.path, event.query_string),
                event.http_version,
                format_status(event.status),
            )

    def websocket_opened(self, event: WebSocketOpened) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                '%s - "WebSocket %s" 101', format_client(event.client), format_target(event.path)
            )

    def handshake_refused(self, event: HandshakeRefused) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                '%s - "WebSocket %s" %s',
                format_client(event.client),
                format_target(event.path),
                format_status(event.status),
            )

    def websocket_closed(self, event: WebSocketClosed) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                '%s - "WebSocket %s" closed %d by %s after %.3f s; '
                "in %d messages %d bytes, out %d messages %d bytes",
                format_client(event.client),
                format_target(event.path),
                event.code,
                event.closed_by.value,
                event.duration,
                event.messages_in,
                event.bytes_in,
                event.messages_out,
                event.bytes_out,
            )
