"""The WebSocket connection engine: bytes in, events out, bytes to send.

No I/O, no clocks.  The close handshake is one explicit transition table
(like h11's `_state.py`); every other rule lives in the frame parser
(`frames.py`), the UTF-8 decoder (`utf8.py`) and the deflate codec
(`deflate.py`).  The I/O layer calls `receive_data`/`receive_eof`, writes
what `data_to_send()` and the `send_*` methods return, closes the transport
when `should_close_transport()` says so (or when its close timeout fires).
"""

from __future__ import annotations

import os
from enum import Enum

from asgiws.websocket.deflate import DeflateParams, MessageDeflate
from asgiws.websocket.errors import CloseCode, InvalidState, ProtocolError
from asgiws.websocket.events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from asgiws.websocket.frames import (
    BINARY,
    CLOSE,
    CONT,
    MAX_CONTROL_PAYLOAD,
    PACK16,
    PING,
    PONG,
    SPLIT_THRESHOLD,
    TEXT,
    Close,
    FrameParser,
    FramePart,
    encode_close_payload,
    encode_frame,
    parse_close_payload,
)
from asgiws.websocket.mask import BytesLike
from asgiws.websocket.utf8 import TextAssembler, decode_text


class EngineState(Enum):
    OPEN = "OPEN"  # no close frame sent yet (after a protocol error: see Engine.failure)
    CLOSING = "CLOSING"  # our close frame is sent (or queued), the peer's not received
    CLOSED = "CLOSED"  # close frames exchanged, or the stream ended


class Transition(Enum):
    SEND_CLOSE = "SEND_CLOSE"  # the application sends a close frame
    RECEIVE_CLOSE = "RECEIVE_CLOSE"  # the peer's close frame arrived (echo queued when OPEN)
    EOF = "EOF"  # the peer closed the TCP stream


_OPEN, _CLOSING, _CLOSED = EngineState.OPEN, EngineState.CLOSING, EngineState.CLOSED

# The whole close handshake.  A pair that is missing is a local misuse
# (InvalidState), e.g. sending a second close frame.
TRANSITIONS: dict[tuple[EngineState, Transition], EngineState] = {
    (_OPEN, Transition.SEND_CLOSE): _CLOSING,
    (_OPEN, Transition.RECEIVE_CLOSE): _CLOSED,
    (_OPEN, Transition.EOF): _CLOSED,
    (_CLOSING, Transition.RECEIVE_CLOSE): _CLOSED,
    (_CLOSING, Transition.EOF): _CLOSED,
    (_CLOSED, Transition.EOF): _CLOSED,
}


def encode_server_frame(opcode: int, payload: BytesLike) -> list[bytes]:
    """One unmasked, uncompressed frame, e.g. encoded once for a broadcast.

    RFC 7692 leaves every message free to go uncompressed (RSV1 clear), so the
    same bytes are valid on connections with and without permessage-deflate.
    """
    return encode_frame(opcode, payload)


class Engine:
    """Shared by both roles; use `ServerEngine` or `ClientEngine`."""

    is_server: bool = True

    # Thousands of idle connections each hold one engine: no per-instance dict.
    __slots__ = (
        "_close_received",
        "_close_sent",
        "_deflate",
        "_eof",
        "_failed",
        "_failure",
        "_max_size",
        "_msg_compressed",
        "_msg_opcode",
        "_msg_parts",
        "_msg_size",
        "_msg_text",
        "_parser",
        "_peer_sent_close",
        "_send_opcode",
        "_state",
        "_to_send",
        "_unreadable",
    )

    def __init__(
        self, *, max_size: int | None = 2**20, deflate: DeflateParams | None = None
    ) -> None:
        self._max_size = max_size
        self._parser = FrameParser(
            expect_masked=self.is_server,
            max_size=max_size,
            compression=deflate is not None,
            assemble_binary=True,
        )
        self._deflate: MessageDeflate | None = (
            deflate.codec(is_server=self.is_server) if deflate is not None else None
        )
        self._state = _OPEN
        self._to_send: list[bytes] = []
        self._close_sent: Close | None = None
        self._close_received: Close | None = None
        self._peer_sent_close = False  # even an invalid one: the stream is over
        self._failed = False
        self._failure: Close | None = None  # the close frame owed after a protocol error
        self._unreadable = False  # the byte stream can no longer be parsed
        self._eof = False
        # the incoming message being assembled
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_parts: list[bytes] = []
        self._msg_text: TextAssembler | None = None
        # the outgoing fragmented message in progress (0: none)
        self._send_opcode = 0

    # --- state --------------------------------------------------------------------
    @property
    def state(self) -> EngineState:
        return self._state

    def _transition(self, transition: Transition) -> None:
        try:
            self._state = TRANSITIONS[self._state, transition]
        except KeyError:
            raise InvalidState(
                f"cannot {transition.value.lower().replace('_', ' ')} in state {self._state.value}"
            ) from None

    @property
    def close_code(self) -> int:
        """The peer's close code; 1006 when no valid close frame arrived."""
        rcvd = self._close_received
        return rcvd.code if rcvd is not None else CloseCode.ABNORMAL

    @property
    def close_reason(self) -> str:
        rcvd = self._close_received
        return rcvd.reason if rcvd is not None else ""

    @property
    def close_sent(self) -> Close | None:
        return self._close_sent

    @property
    def close_received(self) -> Close | None:
        return self._close_received

    @property
    def failure(self) -> Close | None:
        """The close frame we owe the peer after a protocol error, until sent.

        The engine does not send it by itself: the I/O layer first lets the
        application consume (and answer) the messages that arrived before the
        error, then calls `send_close(failure.code, failure.reason)`.  That is
        what keeps replies to those messages ahead of the close frame.
        """
        return self._failure

    def should_close_transport(self) -> bool:
        """Whether the I/O layer should close TCP now (its close timeout covers
        a peer that never answers).

        Server: once close frames went both ways (RFC 6455 7.1.1: "the server
        SHOULD close the underlying TCP connection first"), after EOF, or
        after a failure that left the stream unparseable (nothing more can be
        learned from it).  Client: only after EOF, since the server closes
        first ("the client SHOULD wait for the server to close the connection").
        """
        if self._eof:
            return True
        if not self.is_server:
            return False
        return self._state is _CLOSED or (self._unreadable and self._close_sent is not None)

    # --- receiving ------------------------------------------------------------------
    def receive_data(self, data: BytesLike) -> list[Event]:
        """Parse what arrived; return the events in stream order.

        After a protocol error: the events before it, then ConnectionFailed;
        later data frames are dropped while we look for the peer's close.
        """
        if self._eof or self._unreadable or self._peer_sent_close or not data:
            return []
        parser = self._parser
        parser.feed(data)
        events: list[Event] = []
        try:
            while True:
                if not self._failed:
                    # Whole plain messages in one C call (nothing without the
                    # extension); next_part() below handles everything else.
                    for message in parser.whole_messages():
                        if type(message) is str:
                            events.append(TextMessage(message))
                        elif type(message) is bytes:
                            events.append(BytesMessage(message))
                        else:  # compressed: (is_text, payload)
                            events.append(self._inflate(*message))
                try:
                    part = parser.next_part()
                except ProtocolError:
                    self._unreadable = True
                    raise
                if part is None:
                    break
                if part.opcode < CLOSE:
                    if not self._failed:
                        self._on_data(part, events)
                elif self._on_control(part, events):
                    break  # 5.5.1: nothing the peer sends after its close frame counts
        except ProtocolError as exc:
            self._fail(exc, events)
        return events

    def _inflate(self, is_text: bool, payload: bytes) -> TextMessage | BytesMessage:
        """A whole compressed message, inflated within max_size and checked."""
        deflate = self._deflate
        assert deflate is not None  # the scanner takes RSV1 frames only with deflate
        data = deflate.decompress_message(payload, self._max_size)
        return TextMessage(decode_text(data)) if is_text else BytesMessage(data)

    def _budget(self) -> int | None:
        max_size = self._max_size
        return None if max_size is None else max_size - self._msg_size

    def _on_data(self, part: FramePart, events: list[Event]) -> None:
        if part.first and part.opcode != CONT:
            if part.last and part.fin and self._msg_opcode == 0:
                # fast path: a whole unfragmented message in one piece
                payload = part.payload
                if part.rsv1:
                    events.append(self._inflate(part.opcode == TEXT, payload))
                elif part.opcode == TEXT:
                    events.append(TextMessage(decode_text(payload)))
                else:
                    events.append(BytesMessage(payload))
                return
            self._msg_opcode = part.opcode
            self._msg_compressed = part.rsv1
            self._msg_size = 0
            self._msg_parts = []
            self._msg_text = TextAssembler() if part.opcode == TEXT else None

        chunk = part.payload
        message_end = part.last and part.fin
        if self._msg_compressed:
            deflate = self._deflate
            assert deflate is not None
            if chunk:
                chunk = deflate.decompress(chunk, self._budget())
                self._msg_size += len(chunk)
            if message_end:
                tail = deflate.finish(self._budget())
                if tail:
                    chunk += tail
                    self._msg_size += len(tail)
        text = self._msg_text
        if text is not None:
            # fed chunk by chunk so invalid UTF-8 fails at the first bad byte
            text.feed(chunk, message_end)
        elif chunk:
            self._msg_parts.append(chunk)
        if message_end:
            if text is not None:
                events.append(TextMessage(text.result()))
            else:
                parts = self._msg_parts
                events.append(BytesMessage(parts[0] if len(parts) == 1 else b"".join(parts)))
            self._reset_message()

    def _reset_message(self) -> None:
        self._msg_opcode = 0
        self._msg_parts = []
        self._msg_text = None

    def _on_control(self, part: FramePart, events: list[Event]) -> bool:
        """Handle a ping, pong or close; True when it was the peer's close."""
        opcode = part.opcode
        if opcode == PING:
            if not self._failed:
                events.append(Ping(part.payload))
                # 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a
                # Pong frame in response, unless it already received a Close
                # frame." and 5.5.3: "A Pong frame sent in response to a Ping
                # frame must have identical "Application data"".  None once
                # our close is out: the peer is only waiting for its echo.
                if self._state is _OPEN:
                    self._to_send.extend(self._frame(PONG, part.payload))
            return False
        if opcode == PONG:
            if not self._failed:
                events.append(Pong(part.payload))
            return False
        self._peer_sent_close = True
        code, reason = parse_close_payload(part.payload)
        self._close_received = Close(code, reason)
        if self._failed:
            if self._failure is None:  # our close frame is out: the exchange is over
                self._transition(Transition.RECEIVE_CLOSE)
            return True
        events.append(CloseReceived(code, reason))
        if self._state is _OPEN:
            # 5.5.1: "If an endpoint receives a Close frame and did not
            # previously send a Close frame, the endpoint MUST send a Close
            # frame in response. (When sending a Close frame in response, the
            # endpoint typically echos the status code it received.)"
            self._close_sent = Close(code, "")
            self._to_send.extend(self._frame(CLOSE, encode_close_payload(code, "")))
        self._transition(Transition.RECEIVE_CLOSE)
        self._reset_message()
        return True

    def _fail(self, exc: ProtocolError, events: list[Event]) -> None:
        # 7.1.7: "If _The WebSocket Connection is Established_ prior to the
        # point where the endpoint is required to _Fail the WebSocket
        # Connection_, the endpoint SHOULD send a Close frame with an
        # appropriate status code before proceeding to _Close the WebSocket
        # Connection_."
        self._reset_message()
        if self._failed:  # a second error while looking for the peer's close
            self._unreadable = True
            return
        self._failed = True
        events.append(ConnectionFailed(exc.code, exc.reason))
        if self._state is _OPEN:
            reason = exc.reason.encode("utf-8")[: MAX_CONTROL_PAYLOAD - 2].decode("utf-8", "ignore")
            self._failure = Close(exc.code, reason)
        elif self._peer_sent_close:  # our close was out; the peer's was invalid
            self._transition(Transition.RECEIVE_CLOSE)

    def receive_eof(self) -> list[Event]:
        """The peer closed TCP.  When the closing handshake had not completed,
        returns ConnectionFailed(1006) (unless the connection had already
        failed): 7.1.5 "If _The WebSocket Connection is Closed_ and no Close
        control frame was received by the endpoint ..., _The WebSocket
        Connection Close Code_ is considered to be 1006."  1006 never goes on
        the wire; nothing is queued."""
        if self._eof:
            return []
        self._eof = True
        events: list[Event] = []
        if self._state is not _CLOSED and not self._failed:
            events.append(
                ConnectionFailed(
                    CloseCode.ABNORMAL, "connection closed without a closing handshake"
                )
            )
        self._transition(Transition.EOF)
        return events

    def data_to_send(self) -> list[bytes]:
        """Automatic replies queued by receive_data (pong, close echo, close on
        failure), in order.  Drain after every receive_data."""
        out = self._to_send
        if out:
            self._to_send = []
        return out

    # --- sending --------------------------------------------------------------------
    def _frame(
        self, opcode: int, payload: BytesLike, fin: bool = True, rsv1: bool = False
    ) -> list[bytes]:
        # 5.3: "The masking key is a 32-bit value chosen at random by the
        # client" and "MUST be unpredictable" -- a fresh key for every frame.
        mask = None if self.is_server else os.urandom(4)
        return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)

    def _check_open(self) -> None:
        # 5.5.1: "The application MUST NOT send any more data frames after
        # sending a Close frame."
        if self._state is not _OPEN:
            raise InvalidState(
                f"cannot send in state {self._state.value}: close frame already sent"
            )

    def _send_message(self, opcode: int, payload: BytesLike) -> list[bytes]:
        if self._state is not _OPEN:
            self._check_open()
        if self._send_opcode:
            # 5.4: fragments of one message MUST NOT be interleaved with another
            raise InvalidState("a fragmented message is in progress; finish it with fin=True")
        deflate = self._deflate
        rsv1 = False
        if deflate is not None:
            payload = deflate.compress(payload)
            rsv1 = True  # RFC 7692 6.1: the "Per-Message Compressed" bit
        if self.is_server:
            # The common frames, inline: FIN, RSV1, opcode, unmasked, and one
            # bytes object up to SPLIT_THRESHOLD (what encode_frame builds).
            length = len(payload)
            b0 = 0xC0 | opcode if rsv1 else 0x80 | opcode
            if length < 126:
                return [bytes((b0, length)) + payload]
            if length <= SPLIT_THRESHOLD:
                return [PACK16(b0, 126, length) + payload]
        return self._frame(opcode, payload, rsv1=rsv1)

    def send_text(self, data: str) -> list[bytes]:
        return self._send_message(TEXT, data.encode("utf-8"))

    def send_binary(self, data: BytesLike) -> list[bytes]:
        return self._send_message(BINARY, data)

    def send_fragment(self, data: str | BytesLike, *, fin: bool) -> list[bytes]:
        """Send one fragment; the first one's type (str or bytes-like) picks
        text or binary, later ones must be of the same type (else TypeError)."""
        self._check_open()
        opcode = TEXT if isinstance(data, str) else BINARY
        payload = data.encode("utf-8") if isinstance(data, str) else data
        first = not self._send_opcode
        if not first and opcode != self._send_opcode:
            raise TypeError("all fragments of a message must be str, or all bytes-like")
        deflate = self._deflate
        if deflate is not None:
            payload = deflate.compress(payload, fin=fin)
        frames = self._frame(
            opcode if first else CONT,
            payload,
            fin=fin,
            # RFC 7692 6.1: the Per-Message Compressed bit goes on the first frame only
            rsv1=first and deflate is not None,
        )
        self._send_opcode = 0 if fin else opcode
        return frames

    def _control_payload(self, payload: BytesLike) -> BytesLike:
        # 5.5: "All control frames MUST have a payload length of 125 bytes or less"
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload longer than 125 bytes")
        self._check_open()
        return payload

    def send_ping(self, payload: BytesLike = b"") -> list[bytes]:
        return self._frame(PING, self._control_payload(payload))

    def send_pong(self, payload: BytesLike = b"") -> list[bytes]:
        return self._frame(PONG, self._control_payload(payload))

    def send_close(self, code: int = CloseCode.NORMAL, reason: str = "") -> list[bytes]:
        """Start the closing handshake; code 1005 sends a close frame without
        a status code.  ValueError for a code that may not be sent or a reason
        over 123 bytes of UTF-8."""
        payload = encode_close_payload(code, reason)
        self._transition(Transition.SEND_CLOSE)
        self._close_sent = Close(code, reason)
        self._failure = None
        if self._peer_sent_close:
            # Only after a failure can the peer's (invalid) close frame have
            # arrived while we were OPEN: with ours out, the exchange is over.
            self._transition(Transition.RECEIVE_CLOSE)
        return self._frame(CLOSE, payload)


class ServerEngine(Engine):
    """Server role: expects masked frames, sends unmasked ones."""

    __slots__ = ()
    is_server = True


class ClientEngine(Engine):
    """Client role: masks every frame with a fresh key, expects unmasked frames."""

    __slots__ = ()
    is_server = False
