"""Exceptions a WebSocket user sees, shaped like the websockets 10 API.

`ConnectionClosed` carries the close frames that were received and sent, so
that `except ConnectionClosed as exc: exc.code` works the way a websockets
user expects.  The ASGI face turns it into `ClientDisconnected`, an `OSError`
subclass, because the ASGI spec (2.4+) asks for one on send after close.
"""

from __future__ import annotations

from asgiws.websocket.frames import Close

__all__ = [
    "OK_CLOSE_CODES",
    "ClientDisconnected",
    "Close",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
]

# Closes that mean "all went well": normal closure, going away, and a close
# frame without a status code (RFC 6455 7.4.1 reserves 1005 for that case).
OK_CLOSE_CODES = frozenset({1000, 1001, 1005})

# Close code 1006: "the connection was closed abnormally, e.g., without
# sending or receiving a Close control frame" (RFC 6455 7.4.1).
ABNORMAL_CLOSURE = 1006

_CODE_NAMES = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "connection closed abnormally [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}


def describe_close(close: Close) -> str:
    """`1000 (OK) bye` for messages and logs."""
    name = _CODE_NAMES.get(close.code)
    if name is None:
        name = "registered" if 3000 <= close.code < 4000 else "private use"
    text = f"{close.code} ({name})"
    return f"{text} {close.reason}" if close.reason else text


class ConnectionClosed(Exception):
    """The WebSocket connection is closed (or closing) and cannot carry messages.

    `rcvd` is the peer's close frame, `sent` ours; either is None when that
    frame was never exchanged.  `rcvd_then_sent` says which came first when
    both exist.
    """

    def __init__(
        self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        super().__init__(self._describe())

    def _describe(self) -> str:
        rcvd, sent = self.rcvd, self.sent
        if rcvd is None:
            if sent is None:
                return "no close frame received or sent"
            return f"sent {describe_close(sent)}; no close frame received"
        if sent is None:
            return f"received {describe_close(rcvd)}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {describe_close(rcvd)}; then sent {describe_close(sent)}"
        return f"sent {describe_close(sent)}; then received {describe_close(rcvd)}"

    @property
    def code(self) -> int:
        """The peer's close code; 1006 when no close frame was received."""
        return ABNORMAL_CLOSURE if self.rcvd is None else self.rcvd.code

    @property
    def reason(self) -> str:
        """The peer's close reason; empty when no close frame was received."""
        return "" if self.rcvd is None else self.rcvd.reason


class ConnectionClosedOK(ConnectionClosed):
    """Closed with 1000, 1001 or 1005 in both directions."""


class ConnectionClosedError(ConnectionClosed):
    """Closed with an error code, or without a complete closing handshake."""


def connection_closed(
    rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None
) -> ConnectionClosed:
    """The right `ConnectionClosed` subclass for this pair of close frames."""
    if (
        rcvd is not None
        and sent is not None
        and rcvd.code in OK_CLOSE_CODES
        and sent.code in OK_CLOSE_CODES
    ):
        return ConnectionClosedOK(rcvd, sent, rcvd_then_sent)
    return ConnectionClosedError(rcvd, sent, rcvd_then_sent)


class ClientDisconnected(OSError):
    """ASGI `send()` on a WebSocket that is already closed (ASGI spec 2.4+)."""
