"""Frame encoding and the incremental frame decoder (RFC 6455 section 5).

The decoder knows frames only: header rules, masking, control frame rules.
Messages (fragmentation, UTF-8, inflate, the size limit) are the message
assembler's (`messages.py`), which the decoder asks at each data frame's
header, before a single payload byte is buffered.

The decoder takes any split of the byte stream.  It keeps one bytearray and a
read offset; a data frame's payload is handed out as soon as bytes of it are
there (so text can be validated and compressed data inflated as it streams
in, and no payload is ever buffered twice); control frames are handed out
whole.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, Protocol

from asgiws.websocket.errors import CloseCode, ProtocolError
from asgiws.websocket.mask import (
    Assembler,
    BytesLike,
    PayloadAssembler,
    apply_mask,
    extensions_enabled,
)

WholeMessage = str | bytes | tuple[bool, bytes]
"""What the scanner returns per message: text, binary, or (is_text, payload)
for a compressed message still to be inflated, its payload followed by the
4 octets RFC 7692 7.2.2 appends before inflating (`deflate.TAIL`)."""
ScanFrames = Callable[
    [BytesLike, int, bool, int, bool], tuple[list[WholeMessage], int, bytes | None]
]
"""(buffer, pos, expect_masked, max_size, compressed) -> (messages, new pos,
the payload of the peer's close frame when the scan ended with one)."""

c_scan_frames: ScanFrames | None = None
"""The C fast path for whole single-frame messages (see `FrameDecoder.whole_messages`);
None without the extension or with ASGIWS_NO_EXTENSIONS=1."""
if extensions_enabled():
    try:
        from asgiws.websocket import _speedups
    except ImportError:  # not built
        pass
    else:
        # (an older build hands compressed payloads out without the tail,
        # or leaves the close frame to the general parser)
        if hasattr(_speedups, "SCANS_CLOSE_FRAMES"):
            c_scan_frames = _speedups.scan_frames


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


CONT, TEXT, BINARY = Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY
CLOSE, PING, PONG = Opcode.CLOSE, Opcode.PING, Opcode.PONG
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)
# (A module constant: on Python 3.11 an enum class attribute is a slow lookup.)
_NO_STATUS = CloseCode.NO_STATUS

_FIN = 0x80
_RSV1 = 0x40
_RSV23 = 0x30
RSV_BITS = 0x70
"""RSV1-3 of the first header byte (RSV1 0x40, RSV2 0x20, RSV3 0x10)."""
_MASK = 0x80
PACK8 = struct.Struct(">BB").pack  # (cheaper than bytes((b0, b1)), which builds a tuple)
PACK16 = struct.Struct(">BBH").pack
PACK64 = struct.Struct(">BBQ").pack
_UNPACK16 = struct.Struct(">H").unpack_from
_UNPACK64 = struct.Struct(">Q").unpack_from

MAX_CONTROL_PAYLOAD = 125
SPLIT_THRESHOLD = 1024
"""Payloads longer than this go out as a separate object behind their header
(`transport.writelines`), shorter frames as one joined bytes object."""
ASSEMBLE_THRESHOLD = 64 * 1024
"""A frame at least this long that the message layer lets collect whole, and
whose payload is not all there yet, is collected whole (see FrameDecoder)."""


def encode_header(
    opcode: int,
    length: int,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
    rsv: int = 0,
) -> bytes:
    """The frame header; RFC 6455 5.2: "the minimal number of bytes MUST be
    used to encode the length".  `rsv`: more RSV bits (RSV_BITS), set by
    negotiated extensions."""
    b0 = (_FIN if fin else 0) | (_RSV1 if rsv1 else 0) | rsv | opcode
    mbit = _MASK if mask is not None else 0
    if length < 126:
        header = PACK8(b0, mbit | length)
    elif length < 65536:
        header = PACK16(b0, mbit | 126, length)
    else:
        header = PACK64(b0, mbit | 127, length)
    return header if mask is None else header + mask


def encode_frame(
    opcode: int,
    payload: BytesLike,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
    rsv: int = 0,
) -> list[bytes]:
    """One frame as chunks for `writelines`: [header, payload] when the payload
    is big (no concatenation copy), [frame] otherwise."""
    length = len(payload)
    header = encode_header(opcode, length, fin=fin, rsv1=rsv1, mask=mask, rsv=rsv)
    if mask is not None:
        body = apply_mask(payload, mask)
    elif isinstance(payload, bytes):
        body = payload
    else:
        body = bytes(payload)  # never hand out a caller's mutable buffer
    if length > SPLIT_THRESHOLD:
        return [header, body]
    return [header + body]


# --- close frames -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Close:
    """The content of a close frame: code 1005 when it carried none."""

    code: int
    reason: str


def close_of(code: int, reason: str) -> Close:
    """`Close(code, reason)`; for a close frame without a reason, most of
    them, one shared object per code (a frozen dataclass costs ~0.3 µs to
    build, and every closing handshake builds two or three)."""
    if not reason:
        close = _NO_REASON.get(code)
        if close is not None:
            return close
    return Close(code, reason)


_NO_REASON = {
    code: Close(code, "") for code in (*range(1000, 1004), _NO_STATUS, *range(1007, 1015))
}


def is_valid_close_code(code: int) -> bool:
    """Codes allowed in a close frame on the wire (RFC 6455 7.4.1 / 7.4.2).

    1004 is reserved, 1005/1006/1015 "MUST NOT be set as a status code in a
    Close control frame by an endpoint", 0-999 are "not used", 1016-2999 are
    reserved for future revisions; 1012-1014 are IANA-registered.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def encode_close_payload(code: int, reason: str) -> bytes:
    """Payload of our close frame; code 1005 means "send no status code"."""
    if code == _NO_STATUS:
        if reason:
            raise ValueError("a close reason needs a status code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent")
    data = reason.encode("utf-8")
    # 5.5: "All control frames MUST have a payload length of 125 bytes or less"
    if len(data) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError("close reason longer than 123 bytes of UTF-8")
    return code.to_bytes(2, "big") + data


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a received close frame; (1005, "") when empty."""
    if not payload:
        return _NO_STATUS, ""
    # 5.5.1: "If there is a body, the first two bytes of the body MUST be a
    # 2-byte unsigned integer (in network byte order) representing a status code"
    if len(payload) == 1:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        # 5.5.1: the reason's "data MUST be UTF-8"... 8.1: fail on invalid UTF-8
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in close reason") from None
    return code, reason


# --- decoder ------------------------------------------------------------------


class FramePart:
    """A piece of one frame's payload as the decoder hands it out.

    A frame that was fully buffered comes as one part with `first` and `last`
    both true; control frames always do.  `opcode`, `fin` and `rsv1` are the
    frame's header bits, repeated on every part; `rsv` holds all three RSV
    bits (RSV_BITS) when the decoder leaves them to an extension chain.
    """

    __slots__ = ("fin", "first", "last", "opcode", "payload", "rsv", "rsv1")

    def __init__(
        self,
        opcode: int,
        fin: bool,
        rsv1: bool,
        payload: bytes,
        first: bool,
        last: bool,
        rsv: int = 0,
    ) -> None:
        self.opcode = opcode
        self.fin = fin
        self.rsv1 = rsv1
        self.payload = payload
        self.first = first
        self.last = last
        self.rsv = rsv


class FrameGate(Protocol):
    """What the decoder asks the message layer (`messages.MessageAssembler`)."""

    def start_frame(self, opcode: int, fin: bool, rsv1: bool, length: int) -> bool:
        """A data frame's header, before any of its payload is buffered: raise
        ProtocolError to refuse it (fragmentation rules, size limit); return
        True when its payload may be collected whole rather than streamed."""
        ...


def _fail(reason: str) -> ProtocolError:
    return ProtocolError(CloseCode.PROTOCOL_ERROR, reason)


class FrameDecoder:
    """Incremental decoder: `feed()` bytes, then call `next_part()` until None.

    `expect_masked`: True on the server.  `compression`: RSV1 allowed on the
    first frame of a data message (RFC 7692).  `extensions`: a chain of
    negotiated extensions judges the RSV bits (`chain.ExtensionChain` fails
    the frames whose bits no extension cleared), so the decoder lets every
    RSV bit through and hands them out in `FramePart.rsv`; the C scanner is
    not used then.

    `next_part(gate)` shows every data frame's header to `gate` (the message
    assembler) before taking any of its payload, so message rules and limits
    hold before buffering; without a gate, data frames are only checked as
    frames (what the engine wants while it discards input after a failure).

    A big frame that the gate lets collect whole (ASSEMBLE_THRESHOLD bytes or
    more, payload not all there yet) is handed out as one part once
    complete instead of piece by piece: its chunks are unmasked straight from
    the fed data into one buffer of the frame's size (`PayloadAssembler`),
    skipping the receive buffer -- one copy per byte instead of three
    (buffer, unmasked piece, final join).
    """

    __slots__ = (
        "_buf",
        "_compression",
        "_expect_masked",
        "_fin",
        "_mask",
        "_mask_offset",
        "_opcode",
        "_pos",
        "_remaining",
        "_rsv",
        "_rsv1",
        "_rsv_free",
        "_scan",
        "_whole",
    )

    def __init__(
        self,
        *,
        expect_masked: bool,
        compression: bool = False,
        scan: ScanFrames | Literal["auto"] | None = "auto",
        extensions: bool = False,
    ) -> None:
        # "auto": the C fast path when available (looked up now, so tests can
        # swap the module attribute); None: the general decoder only.  The
        # scanner knows RSV1 only: never with an extension chain.
        if extensions:
            scan = None
        self._scan = c_scan_frames if scan == "auto" else scan
        self._rsv_free = extensions
        self._whole: Assembler | None = None  # the frame being collected whole
        self._buf = bytearray()
        self._pos = 0
        self._expect_masked = expect_masked
        self._compression = compression
        # the data frame whose payload is being handed out
        self._remaining = 0
        self._opcode = 0
        self._fin = True
        self._rsv1 = False
        self._rsv = 0
        self._mask: bytes | None = None
        self._mask_offset = 0

    def feed(self, data: BytesLike) -> None:
        buf = self._buf
        if self._pos and self._pos == len(buf):
            buf.clear()
            self._pos = 0
        whole = self._whole
        if whole is not None and not buf and self._remaining:
            # The middle of a big frame: straight into its payload buffer.
            n = self._remaining
            if n >= len(data):
                whole.add(data, self._mask)
                self._remaining = n - len(data)
                return
            with memoryview(data) as view, view[:n] as head, view[n:] as rest:
                whole.add(head, self._mask)
                self._remaining = 0
                buf += rest
            return
        buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out."""
        return len(self._buf) - self._pos

    @property
    def idle(self) -> bool:
        """Nothing received is left to hand out: `next_part()` would return
        None (no byte buffered, no frame in progress or collected whole)."""
        return self._pos == len(self._buf) and not self._remaining and self._whole is None

    def whole_messages(self, max_size: int | None) -> tuple[list[WholeMessage], bytes | None]:
        """Fast path: every message at the head of the buffer that is one
        complete frame (FIN, text or binary, at most `max_size` bytes on the
        wire, no RSV bit but RSV1 when compression is negotiated), consumed in
        one C call: str (valid UTF-8) or bytes, or (is_text, payload) for a
        compressed one, which the message assembler inflates and checks.
        Then the payload of the peer's close frame when one that keeps the
        frame rules came behind them (consumed too, and the last thing
        taken: nothing after it counts), else None; `parse_close_payload`
        judges the payload, as for one from `next_part()`.

        Only call it between messages (no fragmented message in progress):
        the scanner knows no fragmentation state.  Returns ([], None) without
        the C extension or in the middle of a frame; `next_part()` then
        handles what is left, with all the rules and errors -- this only ever
        skips work for frames that parse without any.
        """
        scan = self._scan
        if scan is None or self._remaining or self._whole is not None:
            return [], None  # (a frame collected whole may be complete, waiting for next_part)
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 2:
            return [], None
        limit = -1 if max_size is None else max_size
        messages, pos, close = scan(buf, pos, self._expect_masked, limit, self._compression)
        if pos == len(buf):  # all taken: hold no bytes (what _compact does)
            buf.clear()
            pos = 0
        self._pos = pos
        return messages, close

    def feed_whole(
        self, data: BytesLike, max_size: int | None
    ) -> tuple[list[WholeMessage], bool, bytes | None]:
        """`feed(data)`, then `whole_messages(max_size)` and `idle`, in one
        call: the engine's common read between messages.  Returns (messages,
        idle, close payload or None).

        When nothing is buffered or in progress, the scanner reads `data`
        itself and only what it leaves (an incomplete or unusual frame) is
        buffered: the usual read of whole frames is never copied into the
        buffer.  Same preconditions and results as `whole_messages()`;
        `data` is not empty (`receive_data()` returns before).
        """
        scan = self._scan
        if scan is None:
            # Nothing is taken here without the scanner, and the fed bytes
            # are buffered or collected whole: not idle.
            self.feed(data)
            return [], False, None
        if self._remaining or self._whole is not None or self._buf:
            self.feed(data)
            messages, close = self.whole_messages(max_size)
            return messages, self.idle, close
        end = len(data)
        if end < 2:
            self._buf += data
            return [], not end, None
        limit = -1 if max_size is None else max_size
        messages, pos, close = scan(data, 0, self._expect_masked, limit, self._compression)
        if pos == end:
            return messages, True, close
        self._buf += data[pos:] if pos else data  # (_pos is 0: the buffer was empty)
        return messages, False, close

    def _take(self, n: int) -> bytes:
        start = self._pos
        self._pos = start + n
        mask = self._mask
        with memoryview(self._buf) as view, view[start : start + n] as chunk:
            if mask is None:
                return bytes(chunk)
            offset = self._mask_offset
            if offset:
                mask = mask[offset:] + mask[:offset]
            self._mask_offset = (offset + n) & 3
            return apply_mask(chunk, mask)

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def next_part(self, gate: FrameGate | None = None) -> FramePart | None:
        """The next piece of payload, or None until more bytes are fed.

        Raises ProtocolError (1002) for a header that breaks the frame rules,
        and whatever `gate` raises for a data frame it refuses.  Either way
        the stream cannot be decoded any further.
        """
        buf = self._buf
        available = len(buf) - self._pos
        remaining = self._remaining
        if self._whole is not None:
            return self._collect(available)
        if remaining:  # in the middle of a data frame's payload
            if not available:
                self._compact()
                return None
            n = remaining if remaining <= available else available
            payload = self._take(n)
            self._remaining = remaining = remaining - n
            return FramePart(
                self._opcode, self._fin, self._rsv1, payload, False, not remaining, self._rsv
            )

        if available < 2:
            self._compact()
            return None
        pos = self._pos
        b0 = buf[pos]
        b1 = buf[pos + 1]
        fin = bool(b0 & _FIN)
        rsv1 = bool(b0 & _RSV1)
        opcode = b0 & 0x0F
        masked = bool(b1 & _MASK)
        length = b1 & 0x7F

        # 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines
        # meanings for non-zero values. If a nonzero value is received and none
        # of the negotiated extensions defines the meaning of such a nonzero
        # value, the receiving endpoint MUST _Fail the WebSocket Connection_."
        # With an extension chain, the chain judges them once the frame is whole.
        rsv = b0 & RSV_BITS
        if rsv and not self._rsv_free:
            if b0 & _RSV23:
                raise _fail("reserved bits RSV2/RSV3 set without a negotiated extension")
            if not self._compression:
                raise _fail("reserved bit RSV1 set without a negotiated extension")
            # RFC 7692 6.1: "An endpoint MUST NOT set the "Per-Message
            # Compressed" bit of control frames and non-first fragments of a
            # data message. An endpoint receiving such a message MUST _Fail
            # the WebSocket Connection_."
            if opcode not in (TEXT, BINARY):
                raise _fail("RSV1 set on a control or continuation frame")
        # 5.2: "If an unknown opcode is received, the receiving endpoint MUST
        # _Fail the WebSocket Connection_."
        if opcode not in _KNOWN_OPCODES:
            raise _fail(f"unknown opcode {opcode:#x}")
        is_control = opcode >= CLOSE
        if is_control:
            # 5.5: "All control frames MUST have a payload length of 125 bytes
            # or less and MUST NOT be fragmented."
            if length > MAX_CONTROL_PAYLOAD:
                raise _fail("control frame payload longer than 125 bytes")
            if not fin:
                raise _fail("fragmented control frame")
        # 5.1: "The server MUST close the connection upon receiving a frame
        # that is not masked." / "A client MUST close a connection if it
        # detects a masked frame."
        if masked != self._expect_masked:
            raise _fail(
                "unmasked frame from client" if self._expect_masked else "masked frame from server"
            )

        header_size = 2
        if length == 126:
            if available < 4:
                return None
            (length,) = _UNPACK16(buf, pos + 2)
            header_size = 4
        elif length == 127:
            if available < 10:
                return None
            (length,) = _UNPACK64(buf, pos + 2)
            # 5.2: "the most significant bit MUST be 0"
            if length >> 63:
                raise _fail("64-bit payload length with the most significant bit set")
            header_size = 10
        if masked:
            header_size += 4
        if available < header_size:
            return None
        if is_control:
            if available < header_size + length:
                self._compact()
                return None
            collect = False
        else:
            # The whole header is there and nothing of the payload is taken:
            # the message layer's rules and limits apply before buffering.
            collect = gate is not None and gate.start_frame(opcode, fin, rsv1, length)

        self._mask = bytes(buf[pos + header_size - 4 : pos + header_size]) if masked else None
        self._mask_offset = 0
        self._pos = pos + header_size
        available -= header_size
        if is_control:
            return FramePart(opcode, True, rsv1, self._take(length), True, True, rsv)

        self._opcode = opcode
        self._fin = fin
        self._rsv1 = rsv1
        self._rsv = rsv
        if collect and length > available and length >= ASSEMBLE_THRESHOLD:
            # (module attribute looked up here, so tests can swap it)
            self._whole = PayloadAssembler(length)
            self._remaining = length
            return self._collect(available)
        n = length if length <= available else available
        payload = self._take(n)
        self._remaining = remaining = length - n
        return FramePart(opcode, fin, rsv1, payload, True, not remaining, rsv)

    def _collect(self, available: int) -> FramePart | None:
        """Move buffered payload bytes into the frame collected whole; the
        frame as one part once complete."""
        whole = self._whole
        assert whole is not None
        remaining = self._remaining
        if remaining and available:
            n = remaining if remaining <= available else available
            start = self._pos
            with memoryview(self._buf) as view, view[start : start + n] as chunk:
                whole.add(chunk, self._mask)
            self._pos = start + n
            self._remaining = remaining = remaining - n
        if remaining:
            self._compact()
            return None
        self._whole = None
        return FramePart(self._opcode, self._fin, self._rsv1, whole.take(), True, True, self._rsv)
