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
    """The peer pinged us; the engine already queued the pong (none once our
    close frame is out)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """The peer answered a ping (or sent an unsolicited pong)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame; `code` is 1005 when the frame carried none.

    Not emitted for a close frame that arrives after a failure, while the
    engine discards input (`Engine.close_received` has it then)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The peer broke the protocol (RFC 6455 section 7.1.7), with `code`, or
    closed TCP without a closing handshake (`code` 1006).

    Emitted once, after every event that preceded the error in the byte
    stream.  The close frame carrying `code` is NOT queued: unless ours was
    already out, the engine moves to CLOSE_OWED and `Engine.failure` holds
    it until the I/O layer sends it (`send_close(failure.code,
    failure.reason)`) once the application has consumed the earlier
    messages.  1006 never goes on the wire.  `Engine.fail()`, our own
    decision to fail, emits no event.
    """

    code: int
    reason: str


Event = TextMessage | BytesMessage | Ping | Pong | CloseReceived | ConnectionFailed
