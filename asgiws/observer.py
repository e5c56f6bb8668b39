"""What the server reports, through one interface.

Connections and request cycles tell an `Observer` what happened to them
(an HTTP connection opened or closed, a WebSocket opened or closed, a
handshake refused, an HTTP request done, a ping answered, a broadcast
skipped, writes paused by backpressure).  Features
that want to know (the access log now, metrics later) subscribe; they never
reach into a connection for the numbers.

Cost without a subscriber: the server hands connections `None` instead of an
observer, and every report site is `if observer is not None:` -- the event
object is only built when somebody listens.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BroadcastSkipReason",
    "BroadcastSkipped",
    "ClosedBy",
    "HandshakeRefused",
    "HttpConnectionClosed",
    "HttpConnectionOpened",
    "HttpRequestDone",
    "Observer",
    "ObserverGroup",
    "PingRoundTrip",
    "WebSocketClosed",
    "WebSocketOpened",
    "WritesPaused",
    "combine",
]

Address = tuple[str, int] | None
"""(host, port) of a TCP peer; None for UNIX sockets."""


class ClosedBy(enum.Enum):
    """Which side started the closing handshake."""

    LOCAL = "local"  # our close frame went first (the app, shutdown, a protocol error)
    PEER = "peer"  # the peer's close frame arrived before we sent ours
    NOBODY = "nobody"  # TCP ended without a close frame either way (code 1006)


class BroadcastSkipReason(enum.Enum):
    """Why `broadcast()` left a connection out of one message."""

    NOT_OPEN = "connection is not open"
    FRAGMENTED_SEND = "a fragmented message is being sent"
    SLOW_READER = "queued outgoing bytes above write_limit or the hub's bound (slow reader)"


@dataclass(frozen=True, slots=True)
class WebSocketOpened:
    """The 101 went out (server) or was accepted (client)."""

    path: str
    client: Address
    subprotocol: str | None


@dataclass(frozen=True, slots=True)
class WebSocketClosed:
    """The TCP connection under a WebSocket ended.

    `code`/`reason` are the code that ended the connection as the ASGI app
    sees it in `websocket.disconnect`: the peer's close frame, else ours, else
    1006.  Counts are whole messages and their payload bytes (after inflate on
    the way in, before deflate on the way out).
    """

    path: str
    client: Address
    code: int
    reason: str
    closed_by: ClosedBy
    duration: float  # seconds from open to connection lost
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int


@dataclass(frozen=True, slots=True)
class HandshakeRefused:
    """An upgrade request answered with something else than 101: by the
    server (bad handshake, origin, timeout, app error) or by the app
    (`websocket.close` before accept, `websocket.http.response.*`)."""

    path: str
    client: Address
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class HttpConnectionOpened:
    """A TCP (or UNIX-socket) connection was accepted; it speaks HTTP until
    it ends or is handed to a WebSocket.  `client` is the transport's peer:
    proxy headers are per request and not known yet."""

    client: Address


@dataclass(frozen=True, slots=True)
class HttpConnectionClosed:
    """An accepted connection stopped being an HTTP connection: it ended
    (`upgraded` False), or a WebSocket upgrade took it over (`upgraded`
    True; what follows is reported as a handshake refusal or a WebSocket
    opened and closed).  Every `HttpConnectionOpened` gets exactly one."""

    client: Address
    upgraded: bool


@dataclass(frozen=True, slots=True)
class HttpRequestDone:
    """An HTTP response was sent completely (or the request ended without one:
    `status` is then what went out, 500 for an app error)."""

    method: str
    path: str
    query_string: bytes
    http_version: str
    client: Address
    status: int
    duration: float  # seconds from the request head to the last body byte written


@dataclass(frozen=True, slots=True)
class PingRoundTrip:
    """A pong answered one of our pings (keepalive or `ping()`)."""

    client: Address
    latency: float


@dataclass(frozen=True, slots=True)
class BroadcastSkipped:
    client: Address
    reason: BroadcastSkipReason


@dataclass(frozen=True, slots=True)
class WritesPaused:
    """A WebSocket's transport buffer went above its write limit: `send()`
    waits and broadcasts skip it until the peer reads."""

    client: Address


class Observer:
    """Subscribe by subclassing and overriding what you need; every method
    is called on the event loop and must not block or raise."""

    def websocket_opened(self, event: WebSocketOpened) -> None:
        pass

    def websocket_closed(self, event: WebSocketClosed) -> None:
        pass

    def handshake_refused(self, event: HandshakeRefused) -> None:
        pass

    def http_request_done(self, event: HttpRequestDone) -> None:
        pass

    def http_connection_opened(self, event: HttpConnectionOpened) -> None:
        pass

    def http_connection_closed(self, event: HttpConnectionClosed) -> None:
        pass

    def ping_round_trip(self, event: PingRoundTrip) -> None:
        pass

    def broadcast_skipped(self, event: BroadcastSkipped) -> None:
        pass

    def writes_paused(self, event: WritesPaused) -> None:
        pass


class ObserverGroup(Observer):
    """Several subscribers behind one observer, called in order."""

    __slots__ = ("observers",)

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

    def websocket_opened(self, event: WebSocketOpened) -> None:
        for observer in self.observers:
            observer.websocket_opened(event)

    def websocket_closed(self, event: WebSocketClosed) -> None:
        for observer in self.observers:
            observer.websocket_closed(event)

    def handshake_refused(self, event: HandshakeRefused) -> None:
        for observer in self.observers:
            observer.handshake_refused(event)

    def http_request_done(self, event: HttpRequestDone) -> None:
        for observer in self.observers:
            observer.http_request_done(event)

    def http_connection_opened(self, event: HttpConnectionOpened) -> None:
        for observer in self.observers:
            observer.http_connection_opened(event)

    def http_connection_closed(self, event: HttpConnectionClosed) -> None:
        for observer in self.observers:
            observer.http_connection_closed(event)

    def ping_round_trip(self, event: PingRoundTrip) -> None:
        for observer in self.observers:
            observer.ping_round_trip(event)

    def broadcast_skipped(self, event: BroadcastSkipped) -> None:
        for observer in self.observers:
            observer.broadcast_skipped(event)

    def writes_paused(self, event: WritesPaused) -> None:
        for observer in self.observers:
            observer.writes_paused(event)


def combine(observers: Iterable[Observer]) -> Observer | None:
    """What a server hands its connections: None without subscribers (so a
    report costs one `is not None` test), the one subscriber itself, or a
    group."""
    subscribed = tuple(observers)
    if not subscribed:
        return None
    if len(subscribed) == 1:
        return subscribed[0]
    return ObserverGroup(subscribed)
