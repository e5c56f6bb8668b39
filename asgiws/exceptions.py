"""Exceptions a WebSocket user sees: the websockets 10 tree, same names, same
bases, same constructor arguments, under one `WebSocketException` base::

    WebSocketException
    ├── ConnectionClosed
    │   ├── ConnectionClosedError
    │   └── ConnectionClosedOK
    ├── InvalidHandshake
    │   ├── SecurityError
    │   ├── InvalidMessage
    │   ├── InvalidHeader
    │   │   ├── InvalidHeaderFormat
    │   │   └── InvalidHeaderValue
    │   │       ├── InvalidOrigin
    │   │       └── InvalidUpgrade
    │   ├── InvalidStatus (= InvalidStatusCode)
    │   ├── NegotiationError
    │   │   ├── DuplicateParameter
    │   │   ├── InvalidParameterName
    │   │   └── InvalidParameterValue
    │   ├── AbortHandshake
    │   └── RedirectHandshake
    ├── InvalidState
    ├── InvalidURI
    ├── PayloadTooBig
    └── ProtocolError

`ConnectionClosed` carries the close frames that were received and sent, so
that `except ConnectionClosed as exc: exc.code` works the way a websockets
user expects.  The ASGI face turns it into `ClientDisconnected`, an `OSError`
subclass, because the ASGI spec (2.4+) asks for one on send after close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgiws.websocket.frames import Close

if TYPE_CHECKING:
    from asgiws.datastructures import Headers, HeadersLike

__all__ = [
    "OK_CLOSE_CODES",
    "AbortHandshake",
    "ClientDisconnected",
    "Close",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidState",
    "InvalidStatus",
    "InvalidStatusCode",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "RedirectHandshake",
    "SecurityError",
    "WebSocketException",
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


class WebSocketException(Exception):
    """Base of every exception asgiws raises about a WebSocket."""


class ConnectionClosed(WebSocketException):
    """The WebSocket connection is closed (or closing) and cannot carry messages.

    `rcvd` is the peer's close frame, `sent` ours; either is None when that
    frame was never exchanged.  `rcvd_then_sent` says which came first when
    both exist.
    """

    def __init__(
        self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None
    ) -> None:
        # (No super().__init__(): `args` stays what the constructor got, as
        # in websockets, which is also what pickling rebuilds the exception
        # from.  The text is made when asked for (__str__): the ASGI face
        # turns most of these into websocket.disconnect unread.)
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    def __str__(self) -> str:
        return self._describe()

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


# --- the opening handshake ----------------------------------------------------------


class InvalidHandshake(WebSocketException):
    """The opening handshake failed: refused, or answered wrongly."""


class SecurityError(InvalidHandshake):
    """The peer went past a limit set for safety: a response head larger
    than the client accepts, or too many redirects."""


class InvalidMessage(InvalidHandshake):
    """The handshake is not a readable HTTP message: malformed, too large,
    or cut short by the connection closing (then `__cause__` is an EOFError
    or the OSError that closed it)."""


class InvalidHeader(InvalidHandshake):
    """A header is missing, empty or wrong (`name`, `value`)."""

    def __init__(self, name: str, value: str | None = None) -> None:
        self.name = name
        self.value = value
        if value is None:
            message = f"missing {name} header"
        elif value == "":
            message = f"empty {name} header"
        else:
            message = f"invalid {name} header: {value}"
        super().__init__(message)


class InvalidHeaderFormat(InvalidHeader):
    """A header that does not parse: `error` at position `pos` of `header`."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """A header that parses but carries a value we cannot accept."""


class InvalidOrigin(InvalidHeader):
    """The Origin header is missing or not among the allowed origins."""

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin)


class InvalidUpgrade(InvalidHeader):
    """The Upgrade or Connection header does not ask for a WebSocket."""


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade with another status than 101.

    `status_code` and `headers` as websockets 10's `InvalidStatusCode`;
    `body` holds at most the first 64 KiB of the refusal's body."""

    def __init__(self, status_code: int, headers: Headers, body: bytes = b"") -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers
        self.body = body


InvalidStatusCode = InvalidStatus
"""The websockets 10 name of InvalidStatus (same `status_code` and `headers`)."""


class NegotiationError(InvalidHandshake):
    """No subprotocol or extension could be agreed on, or the server chose
    one the client did not offer."""


class DuplicateParameter(NegotiationError):
    """An extension parameter given twice."""

    def __init__(self, name: str) -> None:
        super().__init__(f"duplicate parameter: {name}")
        self.name = name


class InvalidParameterName(NegotiationError):
    """An extension parameter this extension does not define."""

    def __init__(self, name: str) -> None:
        super().__init__(f"invalid parameter name: {name}")
        self.name = name


class InvalidParameterValue(NegotiationError):
    """An extension parameter with a value out of its range."""

    def __init__(self, name: str, value: str | None) -> None:
        shown = "missing value" if value is None else ("empty value" if value == "" else value)
        super().__init__(f"invalid value for parameter {name}: {shown}")
        self.name = name
        self.value = value


class AbortHandshake(InvalidHandshake):
    """Raise it from `process_request` to answer with this HTTP response
    instead of a 101 (websockets' way; returning the tuple works too)."""

    def __init__(self, status: int, headers: HeadersLike, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        super().__init__(f"HTTP {int(status)}, {len(body)} bytes")


class RedirectHandshake(InvalidHandshake):
    """The server redirected the client to `uri` (followed by `connect()`
    up to its redirect limit)."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"redirect to {uri}")
        self.uri = uri


# --- the rest ----------------------------------------------------------------------


class InvalidState(WebSocketException, AssertionError):
    """An operation the connection's state does not allow (e.g. sending
    before the opening handshake completed); an AssertionError as in
    websockets, since it is the program's mistake."""


class InvalidURI(WebSocketException, ValueError):
    """A URI that `connect()` cannot open: wrong scheme, no host, bad port...
    (also a ValueError, which is what it is)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri!r} is not a valid WebSocket URI: {reason}")
        self.uri = uri
        self.reason = reason


class PayloadTooBig(WebSocketException):
    """A message larger than `max_size`: the connection closed with 1009.
    It is the `__cause__` of the `ConnectionClosedError` that recv() raises."""


class ProtocolError(WebSocketException):
    """The peer broke RFC 6455/7692: the connection closed with 1002 or 1007.
    It is the `__cause__` of the `ConnectionClosedError` that recv() raises."""


def failure_exception(code: int, reason: str) -> WebSocketException:
    """The websockets exception for the close code a peer's violation called for."""
    if code == 1009:
        return PayloadTooBig(reason)
    return ProtocolError(f"{code}: {reason}" if reason else str(code))
