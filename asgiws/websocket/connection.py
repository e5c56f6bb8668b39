"""The WebSocket connection engine: bytes in, events out, bytes to send.

No I/O, no clocks.  Three parts, each owning its rules: the frame decoder
(`frames.py`: header, masking and control frame rules), the message
assembler (`messages.py`: fragmentation, UTF-8, inflate, size limit) and,
here, the connection's state: one transition table (like h11's
`_state.py`) for our side and the peer's side, which alone decides what is
read, what may be sent and when TCP should close.  The I/O layer calls
`receive_data`/`receive_eof`, writes what `data_to_send()` and the `send_*`
methods return, and closes the transport when `should_close_transport()`
says so (or when its close timeout fires).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING

from asgiws.websocket.chain import ExtensionChain
from asgiws.websocket.deflate import DeflateParams, MessageDeflate, SharedCompressionKey
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
    PACK8,
    PACK16,
    PING,
    PONG,
    SPLIT_THRESHOLD,
    TEXT,
    Close,
    FrameDecoder,
    close_of,
    encode_close_payload,
    encode_frame,
    parse_close_payload,
)
from asgiws.websocket.mask import BytesLike
from asgiws.websocket.messages import MessageAssembler

if TYPE_CHECKING:
    from asgiws.extensions.base import Extension


class OurState(Enum):
    """Our side: what we may still send."""

    OPEN = "OPEN"  # anything; no close frame sent yet
    # The peer broke the protocol and we owe it our close frame (`failure`).
    # The engine does not queue it: the I/O layer sends it once the
    # application has consumed (and answered) the messages that came before
    # the error, so messages may still go out until then.
    CLOSE_OWED = "CLOSE_OWED"
    # Our close frame is out (or queued): 5.5.1 "The application MUST NOT
    # send any more data frames after sending a Close frame."
    CLOSE_SENT = "CLOSE_SENT"
    ENDED = "ENDED"  # the peer closed TCP before our close frame went out

    # The state machine's tables are dicts keyed by these members, looked up
    # on every transition: the identity hash is a C slot, Enum's own
    # __hash__ (hash of the name) a Python call.
    __hash__ = object.__hash__


class TheirState(Enum):
    """The peer's side: what its bytes still mean."""

    MESSAGES = "MESSAGES"  # frames decoded, messages and control frames delivered
    # We failed the connection: frames are still decoded, but only to find
    # the peer's close frame; everything else is dropped (see `Engine.fail`
    # for why we read on at all).
    DISCARDING = "DISCARDING"
    # A frame header broke the rules: no frame boundary can be trusted any
    # more, so no byte counts any more.
    UNREADABLE = "UNREADABLE"
    # The peer's close frame arrived (even an invalid one): nothing the peer
    # sends after it counts.
    CLOSE_RECEIVED = "CLOSE_RECEIVED"
    EOF = "EOF"  # the peer closed TCP

    __hash__ = object.__hash__  # (as OurState's)


class EngineState(Enum):
    """The coarse state (`Engine.state`), derived from the two sides."""

    OPEN = "OPEN"  # we may send: our side OPEN or CLOSE_OWED
    CLOSING = "CLOSING"  # our close frame is sent (or queued), the peer's not received
    CLOSED = "CLOSED"  # close frames exchanged, or the stream ended


class Trigger(Enum):
    """What moves the state."""

    SEND_CLOSE = "SEND_CLOSE"  # the application sends a close frame (send_close)
    FAIL = "FAIL"  # the I/O layer fails the connection (fail): our close frame queued if none out
    RECEIVE_CLOSE = "RECEIVE_CLOSE"  # the peer's close frame arrived (echo queued when OPEN)
    PROTOCOL_ERROR = "PROTOCOL_ERROR"  # a message broke a rule; the frames around it still decode
    FRAMING_ERROR = "FRAMING_ERROR"  # a frame header broke a rule; nothing after it decodes
    EOF = "EOF"  # the peer closed the TCP stream

    __hash__ = object.__hash__  # (as OurState's)


_OPEN, _CLOSE_OWED, _CLOSE_SENT = OurState.OPEN, OurState.CLOSE_OWED, OurState.CLOSE_SENT
_ENDED = OurState.ENDED
_MESSAGES, _DISCARDING, _UNREADABLE = (
    TheirState.MESSAGES,
    TheirState.DISCARDING,
    TheirState.UNREADABLE,
)
_CLOSE_RECEIVED, _EOF = TheirState.CLOSE_RECEIVED, TheirState.EOF
# (Module constants: on Python 3.11 and older an enum class's attribute goes
# through EnumType.__getattr__'s slot, ~850 instructions against ~50 for a
# global; the engine reads these once or more per connection.)
_STATE_OPEN, _STATE_CLOSING, _STATE_CLOSED = (
    EngineState.OPEN,
    EngineState.CLOSING,
    EngineState.CLOSED,
)


def _same(*states: TheirState) -> dict[TheirState, TheirState]:
    return {state: state for state in states}


# The whole state machine: each trigger moves our side and the peer's side.
# A side state missing from a row cannot meet that trigger: for SEND_CLOSE
# that is the caller's misuse (InvalidState: a second close frame, or one
# after the peer closed TCP); the engine fires the other triggers only
# where the row has the state.
TRANSITIONS: dict[Trigger, tuple[dict[OurState, OurState], dict[TheirState, TheirState]]] = {
    Trigger.SEND_CLOSE: (
        {_OPEN: _CLOSE_SENT, _CLOSE_OWED: _CLOSE_SENT},
        _same(_MESSAGES, _DISCARDING, _UNREADABLE, _CLOSE_RECEIVED),
    ),
    Trigger.FAIL: (
        {_OPEN: _CLOSE_SENT, _CLOSE_OWED: _CLOSE_SENT, _CLOSE_SENT: _CLOSE_SENT, _ENDED: _ENDED},
        {_MESSAGES: _DISCARDING, **_same(_DISCARDING, _UNREADABLE, _CLOSE_RECEIVED, _EOF)},
    ),
    Trigger.RECEIVE_CLOSE: (
        {_OPEN: _CLOSE_SENT, _CLOSE_OWED: _CLOSE_OWED, _CLOSE_SENT: _CLOSE_SENT},
        {_MESSAGES: _CLOSE_RECEIVED, _DISCARDING: _CLOSE_RECEIVED},
    ),
    Trigger.PROTOCOL_ERROR: (
        {_OPEN: _CLOSE_OWED, _CLOSE_SENT: _CLOSE_SENT},
        {_MESSAGES: _DISCARDING},
    ),
    Trigger.FRAMING_ERROR: (
        {_OPEN: _CLOSE_OWED, _CLOSE_OWED: _CLOSE_OWED, _CLOSE_SENT: _CLOSE_SENT},
        {_MESSAGES: _UNREADABLE, _DISCARDING: _UNREADABLE},
    ),
    Trigger.EOF: (
        {_OPEN: _ENDED, _CLOSE_OWED: _ENDED, _CLOSE_SENT: _CLOSE_SENT},
        {state: _EOF for state in (_MESSAGES, _DISCARDING, _UNREADABLE, _CLOSE_RECEIVED)},
    ),
}


def coarse_state(ours: OurState, theirs: TheirState) -> EngineState:
    """`Engine.state` for a pair of side states."""
    if theirs is _EOF or ours is _ENDED:
        return _STATE_CLOSED
    if ours is _CLOSE_SENT:
        return _STATE_CLOSED if theirs is _CLOSE_RECEIVED else _STATE_CLOSING
    return _STATE_OPEN


def closes_transport(ours: OurState, theirs: TheirState, *, is_server: bool) -> bool:
    """`Engine.should_close_transport()` for a pair of side states.

    After EOF, always: there is nothing left to read.  Otherwise only a
    server, once its close frame is out and nothing more can come from the
    peer (its close frame arrived, or the stream is unreadable).  RFC 6455
    7.1.1: "when a server is instructed to _Close the WebSocket Connection_
    it SHOULD initiate a TCP Close immediately, and when a client is
    instructed to do the same, it SHOULD wait for a TCP Close from the
    server."  5.5.1: "After both sending and receiving a Close message, an
    endpoint considers the WebSocket connection closed and MUST close the
    underlying TCP connection." -- a client does so once the server's TCP
    close arrives (EOF), or when the I/O layer's close timeout fires (7.1.1:
    "In abnormal cases (such as not having received a TCP Close from the
    server after a reasonable amount of time) a client MAY initiate the TCP
    Close.").
    """
    if theirs is _EOF:
        return True
    return is_server and ours is _CLOSE_SENT and theirs in (_CLOSE_RECEIVED, _UNREADABLE)


def _failure_close(code: int, reason: str) -> Close:
    """The close frame that fails the connection with `code`: the reason cut
    to fit (5.5: "All control frames MUST have a payload length of 125 bytes
    or less"); ValueError for a code that may not be sent."""
    reason = reason.encode("utf-8")[: MAX_CONTROL_PAYLOAD - 2].decode("utf-8", "ignore")
    encode_close_payload(code, reason)
    return close_of(code, reason)


def encode_server_frame(opcode: int, payload: BytesLike) -> list[bytes]:
    """One unmasked, uncompressed frame, e.g. encoded once for a broadcast.

    RFC 7692 leaves every message free to go uncompressed (RSV1 clear), so the
    same bytes are valid on connections with and without permessage-deflate.
    """
    return encode_frame(opcode, payload)


def encode_compressed_server_frame(
    opcode: int, payload: BytesLike, compressor: MessageDeflate
) -> list[bytes]:
    """One unmasked frame of a whole message compressed by `compressor`
    (from `deflate.shared_compressor(key)`), RSV1 set: valid on every server
    connection whose `shared_compression_key` is that key."""
    return [compressor.compress_frame(opcode, payload)]


class Engine:
    """Shared by both roles; use `ServerEngine` or `ClientEngine`.

    A protocol error in what the peer sent (a `ProtocolError` inside the
    engine) becomes, in this order: the events of everything before it in
    the byte stream, then `ConnectionFailed(code, reason)`.  The state moves
    to CLOSE_OWED (unless our close frame was already out) and `failure`
    holds the close frame we owe; `data_to_send()` does NOT carry it.  The
    I/O layer sends it with `send_close(failure.code, failure.reason)` once
    the application has consumed the messages that came before the error,
    so that its replies to them go out ahead of the close frame.  Meanwhile
    the peer's bytes are discarded, except its close frame (see `fail`).
    """

    is_server: bool = True

    # Thousands of idle connections each hold one engine: no per-instance dict.
    __slots__ = (
        "_chain",
        "_close_received",
        "_close_sent",
        "_decoder",
        "_deflate",
        "_failure",
        "_messages",
        "_ours",
        "_rcvd_then_sent",
        "_send_opcode",
        "_theirs",
        "_to_send",
        "sends_plain_frames",
        "shared_compression_key",
        "state",
    )

    def __init__(
        self,
        *,
        max_size: int | None = 2**20,
        deflate: DeflateParams | None = None,
        extensions: Sequence[Extension] | None = None,
    ) -> None:
        """`deflate`: permessage-deflate alone, on the fast paths (the C
        scanner, inline frames, one codec, the bounded inflate).
        `extensions`: any other negotiated chain (permessage-deflate among
        them, as its `PerMessageDeflate`), run frame by frame (`chain.py`)."""
        if deflate is not None and extensions:
            raise ValueError("give deflate= or extensions=, not both")
        codec = deflate.codec(is_server=self.is_server) if deflate is not None else None
        self._deflate: MessageDeflate | None = codec
        self._messages = MessageAssembler(max_size, codec)
        self._chain = ExtensionChain(extensions, max_size) if extensions else None
        self._decoder = FrameDecoder(
            expect_masked=self.is_server,
            compression=codec is not None,
            extensions=self._chain is not None,
        )
        # Plain attributes, not properties: a broadcast reads them (and
        # `state`) once per member per message.
        # Whether a frame encoded once by `encode_server_frame` (unmasked, no
        # extension) may be written as is: a server without an extension chain
        # (permessage-deflate alone allows uncompressed messages); then
        # _send_message also builds the common frames inline.
        self.sends_plain_frames = self.is_server and self._chain is None
        # Server: the key of `encode_compressed_server_frame` frames this
        # connection may send in place of its own compression (our side
        # negotiated no_context_takeover); None without permessage-deflate,
        # with context takeover, and on a client (its frames are masked).
        self.shared_compression_key: SharedCompressionKey | None = (
            codec.shared_key if codec is not None and self.is_server else None
        )
        self._ours = _OPEN
        self._theirs = _MESSAGES
        # OPEN: we may still send; CLOSING: our close frame is out; CLOSED:
        # close frames went both ways, or the stream ended.  Kept by _fire.
        self.state = _STATE_OPEN
        # Frames queued by the engine itself (pongs, close frames): made on
        # first use, as most connections never queue one (an idle one keeps
        # no list).
        self._to_send: list[bytes] | None = None
        self._close_sent: Close | None = None
        self._close_received: Close | None = None
        self._rcvd_then_sent: bool | None = None
        self._failure: Close | None = None  # meaningful in CLOSE_OWED only
        # the outgoing fragmented message in progress (0: none)
        self._send_opcode = 0

    # --- state --------------------------------------------------------------------
    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The extension chain run frame by frame; () on the fast paths."""
        chain = self._chain
        return chain.extensions if chain is not None else ()

    @property
    def our_state(self) -> OurState:
        return self._ours

    @property
    def their_state(self) -> TheirState:
        return self._theirs

    def _fire(self, trigger: Trigger) -> None:
        ours_row, theirs_row = TRANSITIONS[trigger]
        ours = ours_row.get(self._ours)
        theirs = theirs_row.get(self._theirs)
        if ours is None or theirs is None:
            raise InvalidState(
                f"cannot {trigger.value.lower().replace('_', ' ')} "
                f"in state {self._ours.value}/{self._theirs.value}"
            )
        self._ours = ours
        self._theirs = theirs
        self.state = coarse_state(ours, theirs)
        if theirs is not _MESSAGES:
            self._messages.reset()  # no message will complete: free its buffers
            if self._chain is not None:
                self._chain.reset()

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
        """The peer's close frame; None when none arrived or it was invalid."""
        return self._close_received

    @property
    def rcvd_then_sent(self) -> bool | None:
        """Which close frame came first: True when the peer's arrived before
        we sent ours, False when ours went first, None until a close frame
        went either way.  (A close frame from the peer that broke the rules
        does not count: `close_received` stays None for it.)"""
        return self._rcvd_then_sent

    @property
    def failure(self) -> Close | None:
        """The close frame we owe the peer after a protocol error: set in
        state CLOSE_OWED only, None otherwise.

        The engine does not send it by itself: the I/O layer first lets the
        application consume (and answer) the messages that arrived before the
        error, then calls `send_close(failure.code, failure.reason)` (or
        `fail()`, which sends it too).  That is what keeps replies to those
        messages ahead of the close frame.
        """
        return self._failure if self._ours is _CLOSE_OWED else None

    def should_close_transport(self) -> bool:
        """Whether the I/O layer should close TCP now (its close timeout
        covers a peer that never answers); see `closes_transport`:

        ====================================  ======  ======
        state (ours, theirs)                  server  client
        ====================================  ======  ======
        any, EOF                              yes     yes
        CLOSE_SENT, CLOSE_RECEIVED            yes     no
        CLOSE_SENT, UNREADABLE                yes     no
        anything else                         no      no
        ====================================  ======  ======
        """
        return closes_transport(self._ours, self._theirs, is_server=self.is_server)

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection from our side (e.g. a keepalive ping timeout):
        RFC 6455 7.1.7.

        Our close frame goes into `data_to_send()` unless one is out already
        (if a protocol error left one owed, that one goes: the first failure
        names the cause), and from now on the peer's bytes are discarded,
        except its close frame.  The reason is cut to fit a close frame;
        ValueError for a code that may not be sent.  Nothing happens (but the
        check) once our close frame is out and the peer's bytes are already
        discarded or over.

        7.1.7: "If _The WebSocket Connection is Established_ prior to the
        point where the endpoint is required to _Fail the WebSocket
        Connection_, the endpoint SHOULD send a Close frame with an
        appropriate status code (Section 7.4) before proceeding to _Close the
        WebSocket Connection_. [...] An endpoint MUST NOT continue to attempt
        to process data (including a responding Close frame) from the remote
        endpoint after being instructed to _Fail the WebSocket Connection_."

        We deliberately deviate from the last sentence: after failing we
        keep decoding the peer's frames, drop all of them, and look for its
        close frame (state DISCARDING); the I/O layer's close timeout bounds
        the wait.  Closing TCP while the peer is still sending makes the
        kernel answer with RST, which can destroy our close frame before the
        peer has read it -- 1.4: "on some platforms, if a socket is closed
        with data in its receive queue, a RST packet is sent, which will then
        cause recv() to fail for the party that received the RST, even if
        there was data waiting to be read."  Reading until the peer's close
        frame is what gets our status code to the peer (and what the
        Autobahn TestSuite checks).  Nothing from the peer is processed: no
        message, ping or pong is delivered or answered.
        """
        owed = self.failure
        close = _failure_close(code, reason)
        if owed is not None:
            close = owed
        if self._ours is _OPEN or owed is not None:
            payload = encode_close_payload(close.code, close.reason)
            self._queue(self._close_frame(close, payload))
        self._fire(Trigger.FAIL)

    # --- receiving ------------------------------------------------------------------
    def receive_data(self, data: BytesLike) -> list[Event]:
        """Decode what arrived; return the events in stream order.

        After a protocol error: the events before it, then ConnectionFailed
        (see the class docstring); later frames are dropped while we look
        for the peer's close frame.  After the peer's close frame, an
        unreadable frame or EOF, nothing counts: [].

        Whatever queues a frame or moves the closing state comes with an
        event of its own (Ping, CloseReceived, ConnectionFailed), so after a
        call that returned events, all of them TextMessage/BytesMessage,
        `data_to_send()` is empty and `should_close_transport()` unchanged:
        the I/O layer may skip both then.
        """
        theirs = self._theirs
        if (theirs is not _MESSAGES and theirs is not _DISCARDING) or not data:
            return []
        decoder = self._decoder
        messages = self._messages
        chain = self._chain
        # With a chain, it bounds and collects each frame for the extensions.
        message_gate: MessageAssembler | ExtensionChain = messages if chain is None else chain
        fresh: BytesLike | None = data  # fed by the first whole-message pass, or below
        events: list[Event] = []
        while True:
            theirs = self._theirs
            if theirs is _MESSAGES:
                gate: MessageAssembler | ExtensionChain | None = message_gate
                if not messages.opcode:
                    # Between messages: whole plain messages in one C call
                    # (nothing without the extension); next_part() below
                    # handles everything else.
                    if fresh is None:
                        whole, close = decoder.whole_messages(messages.max_size)
                        idle = decoder.idle
                    else:
                        whole, idle, close = decoder.feed_whole(fresh, messages.max_size)
                        fresh = None
                    try:
                        for item in whole:
                            if type(item) is str:
                                events.append(TextMessage(item))
                            elif type(item) is bytes:
                                events.append(BytesMessage(item))
                            else:  # compressed: (is_text, payload + tail) to inflate
                                # (annotated, not cast(): a call per message)
                                is_text: bool
                                payload: bytes
                                is_text, payload = item  # type: ignore[assignment,str-unpack]
                                events.append(messages.inflated_message(is_text, payload))
                    except ProtocolError as exc:
                        self._receive_error(Trigger.PROTOCOL_ERROR, exc, events)
                        if close is not None:
                            # (taken behind the failed message: as when
                            # discarding, only the close frame counts)
                            self._on_close(close, events)
                        continue
                    if close is not None:
                        # The peer's close frame, behind the messages (most
                        # closing handshakes): nothing after it counts.
                        self._on_close(close, events)
                        break
                    if idle:
                        break  # all taken (the common case): skip next_part()
            elif theirs is _DISCARDING:
                gate = None  # data frames are checked as frames only, then dropped
            else:
                break  # the peer's close frame or an unreadable frame: nothing more counts
            if fresh is not None:
                decoder.feed(fresh)  # (in the middle of a message, or discarding)
                fresh = None
            try:
                part = decoder.next_part(gate)
            except ProtocolError as exc:
                self._receive_error(Trigger.FRAMING_ERROR, exc, events)
                break
            if part is None:
                break
            if chain is not None:
                if gate is None and part.opcode != CLOSE:
                    continue  # discarding: only the close frame counts
                try:
                    decoded = chain.decode(part)
                    if decoded is not None and decoded.opcode < CLOSE:
                        # the message layer's rules, on the decoded frame
                        messages.start_frame(
                            decoded.opcode, decoded.fin, False, len(decoded.payload)
                        )
                except ProtocolError as exc:
                    if self._theirs is _MESSAGES:
                        self._receive_error(Trigger.PROTOCOL_ERROR, exc, events)
                    if part.opcode == CLOSE:
                        # undecodable, but the peer's stream is over (as in _on_close)
                        self._fire(Trigger.RECEIVE_CLOSE)
                    continue
                if decoded is None:
                    continue
                part = decoded
            opcode = part.opcode
            if opcode == CLOSE:
                self._on_close(part.payload, events)
            elif gate is None:
                continue  # discarding
            elif opcode < CLOSE:
                try:
                    message = messages.add(part.payload, part.last)
                except ProtocolError as exc:
                    self._receive_error(Trigger.PROTOCOL_ERROR, exc, events)
                    continue
                if message is not None:
                    events.append(message)
            elif opcode == PING:
                events.append(Ping(part.payload))
                # 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a
                # Pong frame in response, unless it already received a Close
                # frame." and 5.5.3: "A Pong frame sent in response to a Ping
                # frame must have identical "Application data"".  None once
                # our close is out: the peer is only waiting for its echo.
                if self._ours is _OPEN:
                    self._queue(self._frame(PONG, part.payload))
            else:
                events.append(Pong(part.payload))
        return events

    def _receive_error(self, trigger: Trigger, exc: ProtocolError, events: list[Event]) -> None:
        """The peer broke the protocol: report it once, owe the close frame."""
        if self._theirs is _MESSAGES:  # (when discarding, we have failed already)
            events.append(ConnectionFailed(exc.code, exc.reason))
            if self._ours is _OPEN:
                # 7.1.7: "the endpoint SHOULD send a Close frame with an
                # appropriate status code"; owed, not queued: see the class
                # docstring and OurState.CLOSE_OWED.
                self._failure = _failure_close(exc.code, exc.reason)
        self._fire(trigger)

    def _on_close(self, payload: bytes, events: list[Event]) -> None:
        reporting = self._theirs is _MESSAGES
        try:
            code, reason = parse_close_payload(payload)
        except ProtocolError as exc:
            if reporting:
                self._receive_error(Trigger.PROTOCOL_ERROR, exc, events)
            self._fire(Trigger.RECEIVE_CLOSE)  # invalid, but the peer's stream is over
            return
        self._close_received = close_of(code, reason)
        if self._rcvd_then_sent is None:
            self._rcvd_then_sent = True
        if reporting:
            events.append(CloseReceived(code, reason))
        if self._ours is _OPEN:
            # 5.5.1: "If an endpoint receives a Close frame and did not
            # previously send a Close frame, the endpoint MUST send a Close
            # frame in response. (When sending a Close frame in response, the
            # endpoint typically echos the status code it received.)"
            echo = close_of(code, "")
            self._queue(self._close_frame(echo, encode_close_payload(code, "")))
        self._fire(Trigger.RECEIVE_CLOSE)

    def receive_eof(self) -> list[Event]:
        """The peer closed TCP.  When neither its close frame nor a failure
        came before, returns ConnectionFailed(1006): 7.1.5 "If _The WebSocket
        Connection is Closed_ and no Close control frame was received by the
        endpoint ..., _The WebSocket Connection Close Code_ is considered to
        be 1006."  1006 never goes on the wire; nothing is queued, and a
        close frame still owed is dropped (`failure` becomes None)."""
        theirs = self._theirs
        if theirs is _EOF:
            return []
        events: list[Event] = []
        if theirs is _MESSAGES:
            events.append(
                ConnectionFailed(
                    CloseCode.ABNORMAL, "connection closed without a closing handshake"
                )
            )
        self._fire(Trigger.EOF)
        return events

    def data_to_send(self) -> list[bytes]:
        """Frames the engine queued by itself, in order: pongs and the echo
        of the peer's close frame (from receive_data), our close frame (from
        fail).  Never the close frame owed after a protocol error (see
        `failure`).  Drain after every receive_data and fail."""
        out = self._to_send
        if out is None:
            return []
        self._to_send = None
        return out

    def _queue(self, frames: list[bytes]) -> None:
        queued = self._to_send
        if queued is None:
            self._to_send = frames
        else:
            queued.extend(frames)

    # --- sending --------------------------------------------------------------------
    def _frame(
        self, opcode: int, payload: BytesLike, fin: bool = True, rsv1: bool = False
    ) -> list[bytes]:
        # 5.3: "The masking key is a 32-bit value chosen at random by the
        # client" and "MUST be unpredictable" -- a fresh key for every frame.
        mask = None if self.is_server else os.urandom(4)
        chain = self._chain
        if chain is not None:  # every frame, control frames too, as websockets does
            opcode, payload, fin, rsv = chain.encode(opcode, payload, fin)
            return encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv)
        return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)

    def _close_frame(self, close: Close, payload: bytes) -> list[bytes]:
        """Our close frame (a state transition goes with it)."""
        self._close_sent = close
        if self._rcvd_then_sent is None:
            self._rcvd_then_sent = False
        return self._frame(CLOSE, payload)

    def _check_open(self) -> None:
        ours = self._ours
        if ours is not _OPEN and ours is not _CLOSE_OWED:
            # 5.5.1: "The application MUST NOT send any more data frames after
            # sending a Close frame."
            raise InvalidState(
                "cannot send: close frame already sent"
                if ours is _CLOSE_SENT
                else "cannot send: the peer closed the connection"
            )

    def _send_message(self, opcode: int, payload: BytesLike) -> list[bytes]:
        if self._ours is not _OPEN:
            self._check_open()
        if self._send_opcode:
            # 5.4: fragments of one message MUST NOT be interleaved with another
            raise InvalidState("a fragmented message is in progress; finish it with fin=True")
        deflate = self._deflate
        if self.sends_plain_frames:
            if deflate is not None:
                # compressed, header and all, in one bytes object
                return [deflate.compress_frame(opcode, payload)]
            # The common frames, inline: FIN, opcode, unmasked, and one bytes
            # object up to SPLIT_THRESHOLD (what encode_frame builds).
            length = len(payload)
            if length < 126:
                return [PACK8(0x80 | opcode, length) + payload]
            if length <= SPLIT_THRESHOLD:
                return [PACK16(0x80 | opcode, 126, length) + payload]
        elif deflate is not None:
            # RFC 7692 6.1: the "Per-Message Compressed" bit
            return self._frame(opcode, deflate.compress(payload), rsv1=True)
        return self._frame(opcode, payload)

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
        """Start the closing handshake, or answer a failure with the close
        frame owed (`failure`); code 1005 sends a close frame without a
        status code.  ValueError for a code that may not be sent or a reason
        over 123 bytes of UTF-8; InvalidState once our close frame is out or
        the peer closed TCP."""
        payload = encode_close_payload(code, reason)
        self._fire(Trigger.SEND_CLOSE)
        return self._close_frame(close_of(code, reason), payload)


class ServerEngine(Engine):
    """Server role: expects masked frames, sends unmasked ones."""

    __slots__ = ()
    is_server = True


class ClientEngine(Engine):
    """Client role: masks every frame with a fresh key, expects unmasked frames."""

    __slots__ = ()
    is_server = False
