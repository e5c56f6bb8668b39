"""What one WebSocket connection is configured with, and nothing else.

The connection never reads `Config`: the server builds one `ConnectionOptions`
from it (`asgiws.options.connection_options`) and shares it between all its
connections; `connect()` builds one from its keywords.  No defaults here: the
defaults are declared once, in `Config`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from asgiws.websocket.deflate import DeflateOptions

__all__ = ["ConnectionLoggerLike", "ConnectionOptions"]

ConnectionLoggerLike = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    max_size: int | None
    """Largest incoming message in bytes (after inflate); None: no limit."""
    max_queue: int
    """Received messages held for the app before the socket stops being read."""
    ping_interval: float | None
    """Seconds between keepalive pings; None: no keepalive."""
    ping_timeout: float | None
    """Seconds a keepalive ping may wait for its pong; None: forever."""
    close_timeout: float
    """Seconds the closing handshake may take before TCP is dropped."""
    read_limit: int
    """Incoming bytes held unparsed before reading pauses: before the opening
    handshake completes, and while max_queue messages wait for the app."""
    write_limit: int
    """High-water mark of the transport's write buffer: send() waits above it."""
    shutdown_close_code: int
    """Close code of a graceful server shutdown (1012, or 1001 for `serve()`)."""
    logger: ConnectionLoggerLike | None
    """Where frames and state changes are logged; None: 'asgiws.websocket'."""
    deflate: DeflateOptions | None
    """What permessage-deflate this endpoint offers or accepts; None: no compression."""
    extensions: tuple[Any, ...] = ()
    """Server: the extension factories `serve(extensions=...)` negotiates as
    a chain when it names any extension but permessage-deflate
    (`asgiws.extensions.negotiation.server_factories`); () otherwise, and
    `deflate` alone applies.  (Not a Config option: factories are objects.)"""
    closes_at_once: bool = False
    """Server: its transports are plain sockets (TCP or UNIX, no TLS), whose
    close() ends the connection within a loop turn when nothing is left to
    send, so a closing handshake that ends with our close() needs no close
    timer.  False (a client, a TLS server): the timer always bounds it.
    (Not a Config option: it follows from whether the server has TLS.)"""
