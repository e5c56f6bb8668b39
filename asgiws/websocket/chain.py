"""A chain of negotiated extensions, run frame by frame (RFC 6455 section 9).

The engine uses it when the handshake agreed on any extension other than
permessage-deflate alone (which runs on the engine's own fast paths).  As
the websockets library does, every frame goes through every extension:
`encode` in negotiation order on the way out, `decode` in the reverse order
on the way in, so that the last extension to encode is the first to decode.

RFC 6455 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
defines meanings for non-zero values. If a nonzero value is received and
none of the negotiated extensions defines the meaning of such a nonzero
value, the receiving endpoint MUST _Fail the WebSocket Connection_."  An
extension defines a bit by clearing it in `decode`: a bit still set after
the whole chain fails the connection (1002).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from asgiws.websocket.errors import CloseCode, ProtocolError
from asgiws.websocket.frames import RSV_BITS, FramePart
from asgiws.websocket.mask import BytesLike

if TYPE_CHECKING:
    from asgiws.extensions.base import Extension

_RSV1, _RSV2, _RSV3 = 0x40, 0x20, 0x10


def _fail_from(exc: Exception, name: str) -> ProtocolError:
    """The close code for what an extension's `decode` raised, as websockets
    picks it: PayloadTooBig 1009, ProtocolError 1002, invalid UTF-8 1007,
    anything else 1011 (the extension's own fault)."""
    from asgiws import exceptions

    if isinstance(exc, ProtocolError):
        return exc
    if isinstance(exc, exceptions.PayloadTooBig):
        return ProtocolError(CloseCode.MESSAGE_TOO_BIG, str(exc) or "message too big")
    if isinstance(exc, exceptions.ProtocolError):
        return ProtocolError(CloseCode.PROTOCOL_ERROR, f"{name}: {exc}")
    if isinstance(exc, UnicodeDecodeError):
        return ProtocolError(CloseCode.INVALID_DATA, f"{name}: invalid UTF-8")
    return ProtocolError(CloseCode.INTERNAL_ERROR, f"extension {name} failed: {exc!r}")


class ExtensionChain:
    """The negotiated extensions of one connection, in negotiation order.

    As the decoder's gate (`start_frame`) it bounds each data frame on the
    wire by `max_size` before buffering it, and has it collected whole: an
    extension sees whole frames.  `decode` turns a frame's parts into the
    decoded frame; the message assembler then applies its own rules
    (fragmentation, UTF-8, max_size after decoding) to what comes out.
    """

    __slots__ = ("_decode_order", "_frame", "_parts", "extensions", "max_size")

    def __init__(self, extensions: Sequence[Extension], max_size: int | None) -> None:
        from asgiws.extensions.base import Frame

        self.extensions = tuple(extensions)
        self._decode_order = tuple(reversed(self.extensions))
        self._frame = Frame
        self.max_size = max_size
        self._parts: list[bytes] = []

    def start_frame(self, opcode: int, fin: bool, rsv1: bool, length: int) -> bool:
        max_size = self.max_size
        # 10.4: a frame is buffered whole for the extensions, so it is
        # bounded before its first byte is.
        if max_size is not None and length > max_size:
            raise ProtocolError(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame of {length} bytes exceeds the limit of {max_size}",
            )
        return True

    def decode(self, part: FramePart) -> FramePart | None:
        """The frame `part` ends, as the extensions decoded it; None until
        its last part.  ProtocolError when an extension refuses the frame
        or leaves an RSV bit set."""
        if not part.last:
            self._parts.append(part.payload)
            return None
        data = part.payload
        if self._parts:
            self._parts.append(data)
            data = b"".join(self._parts)
            self._parts = []
        rsv = part.rsv
        frame = self._frame(
            opcode=part.opcode,
            data=data,
            fin=part.fin,
            rsv1=bool(rsv & _RSV1),
            rsv2=bool(rsv & _RSV2),
            rsv3=bool(rsv & _RSV3),
        )
        for extension in self._decode_order:
            try:
                frame = extension.decode(frame, max_size=self.max_size)
            except Exception as exc:  # every failure closes the connection with a code
                name = getattr(extension, "name", type(extension).__name__)
                raise _fail_from(exc, name) from exc
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            bits = "/".join(
                name
                for name, on in (("RSV1", frame.rsv1), ("RSV2", frame.rsv2), ("RSV3", frame.rsv3))
                if on
            )
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR,
                f"reserved bit {bits} set, and no negotiated extension defines it",
            )
        return FramePart(frame.opcode, frame.fin, False, bytes(frame.data), True, True)

    def reset(self) -> None:
        """Drop a frame half collected (the engine stopped reading messages)."""
        self._parts = []

    def encode(self, opcode: int, payload: BytesLike, fin: bool) -> tuple[int, bytes, bool, int]:
        """(opcode, payload, fin, RSV bits) of one outgoing frame after every
        extension, in negotiation order."""
        frame = self._frame(opcode=opcode, data=bytes(payload), fin=fin)
        for extension in self.extensions:
            frame = extension.encode(frame)
        rsv = (
            (_RSV1 if frame.rsv1 else 0)
            | (_RSV2 if frame.rsv2 else 0)
            | (_RSV3 if frame.rsv3 else 0)
        )
        return frame.opcode, bytes(frame.data), frame.fin, rsv & RSV_BITS
