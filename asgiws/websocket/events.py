"""Immutable events that `Engine.receive_data()` / `receive_eof()` return."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete text message (all fragments joined, UTF-8 validated)."""

    data: str


@dataclass(frozen=True, slots=True)
class BytesMessage:
    """A complete binary message (all fragments joined)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer pinged us; the engine already queued the pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """The peer answered a ping (or sent an unsolicited pong)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame; `code` is 1005 when the frame carried none."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """We failed the connection (RFC 6455 section 7.1.7) with `code`.

    Emitted after every event that preceded the error in the byte stream; the
    close frame carrying `code` is queued in `data_to_send()` (except 1006,
    which never goes on the wire: the peer closed TCP without a close frame).
    """

    code: int
    reason: str


Event = TextMessage | BytesMessage | Ping | Pong | CloseReceived | ConnectionFailed
