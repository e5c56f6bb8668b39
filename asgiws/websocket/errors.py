"""The three exceptions of the sans-I/O engine.

`ProtocolError` is the peer's fault and carries the close code to fail the
connection with; `HandshakeError` refuses (server) or rejects (client) an
opening handshake with an HTTP status; `InvalidState` is the local caller's
fault (sending after the close frame went out).
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """Status codes of RFC 6455 section 7.4.1 that the engine itself uses."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never on the wire: "the close frame had no code"
    ABNORMAL = 1006  # never on the wire: "no close frame at all"
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012


class ProtocolError(Exception):
    """The peer broke RFC 6455/7692; fail the connection with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class HandshakeError(Exception):
    """An opening handshake to refuse with HTTP `status` (server side), or one
    the server refused or answered wrongly (client side)."""

    def __init__(
        self, status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.headers: list[tuple[bytes, bytes]] = list(headers or [])


class InvalidResponse(HandshakeError):
    """Client side: the server's answer to our opening handshake is not an
    acceptable 101; `status` and `headers` are the server's own."""


class InvalidState(Exception):
    """Local misuse: e.g. sending a message after our close frame was sent."""
