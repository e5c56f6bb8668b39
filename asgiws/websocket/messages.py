"""Data frames in, messages out: the one place that knows about messages.

`MessageAssembler` owns everything that spans a frame's payload or several
frames: fragmentation (RFC 6455 5.4), UTF-8 validation of text (8.1),
permessage-deflate inflate (RFC 7692 7.2.2) and the size limit (10.4).  The
frame decoder (`frames.py`) shows it every data frame's header before
buffering any payload (`start_frame`); the engine then hands it the payload
as the decoder cuts it (`add`).  Whole single-frame messages that the C
scanner cut out in one call skip both steps; compressed ones still come here
to be inflated (`inflated_message`).
"""

from __future__ import annotations

from asgiws.websocket.deflate import TAIL, MessageDeflate
from asgiws.websocket.errors import CloseCode, ProtocolError
from asgiws.websocket.events import BytesMessage, TextMessage
from asgiws.websocket.frames import BINARY, CONT, TEXT
from asgiws.websocket.utf8 import TextAssembler, decode_text


def _fail(reason: str) -> ProtocolError:
    return ProtocolError(CloseCode.PROTOCOL_ERROR, reason)


class MessageAssembler:
    """The peer's data message in progress, one at a time.

    `max_size` bounds one message's payload (None: no limit): on the wire
    for an uncompressed message, from the frame headers before buffering;
    after inflating for a compressed one, which the wire size cannot bound.
    `deflate` is the connection's codec when permessage-deflate was agreed.

    `opcode` (read only) is the message in progress: TEXT or BINARY, 0
    between messages.
    """

    __slots__ = (
        "_compressed",
        "_deflate",
        "_fin",
        "_parts",
        "_size",
        "_text",
        "max_size",
        "opcode",
    )

    def __init__(self, max_size: int | None, deflate: MessageDeflate | None) -> None:
        self.max_size = max_size
        self._deflate = deflate
        self.opcode = 0
        self._compressed = False  # RSV1 on the message's first frame
        self._fin = True  # the FIN bit of the frame whose payload is coming
        # Payload bytes counted against max_size: wire bytes for a plain
        # message (counted at each header), inflated bytes for a compressed one.
        self._size = 0
        # What is buffered of a message that spans several pieces; both None
        # until a piece arrives that does not end the message.
        self._text: TextAssembler | None = None
        self._parts: list[bytes] | None = None

    def start_frame(self, opcode: int, fin: bool, rsv1: bool, length: int) -> bool:
        """A data frame's header, before any of its payload is buffered.

        Raises ProtocolError 1002 for a fragmentation error, 1009 when the
        frame takes an uncompressed message past max_size.  Returns True
        when the payload may be collected whole by the decoder: binary
        payloads have nothing to check on the way, and max_size bounds the
        buffer that collecting allocates from the header.
        """
        # 5.4: "A fragmented message consists of a single frame with the FIN
        # bit clear and an opcode other than 0, followed by zero or more
        # frames with the FIN bit clear and the opcode set to 0, and
        # terminated by a single frame with the FIN bit set and an opcode of
        # 0." and "fragments of one message MUST NOT be interleaved between
        # the fragments of another message unless an extension has been
        # negotiated that can interpret the interleaving."
        if opcode == CONT:
            if not self.opcode:
                raise _fail("continuation frame without a message to continue")
        elif self.opcode:
            raise _fail("new data frame while a fragmented message is in progress")
        else:
            self.opcode = opcode
            self._compressed = rsv1
            self._size = 0
        self._fin = fin
        if self._compressed:
            return False  # bounded after inflating, in add()
        size = self._size + length
        max_size = self.max_size
        if max_size is None:
            return False
        # 10.4: "Implementations that have implementation- and/or
        # platform-specific limitations regarding the frame size or total
        # message size after reassembly from multiple frames MUST protect
        # themselves against exceeding those limits."
        if size > max_size:
            raise ProtocolError(
                CloseCode.MESSAGE_TOO_BIG,
                f"message of {size} bytes or more exceeds the limit of {max_size}",
            )
        self._size = size
        return self.opcode == BINARY

    def add(self, chunk: bytes, last: bool) -> TextMessage | BytesMessage | None:
        """The next payload bytes of the frame announced by `start_frame`
        (`last`: the frame's final bytes); the message once it is complete.

        Raises ProtocolError 1007 at the first invalid UTF-8 byte or on
        invalid compressed data, 1009 when inflating exceeds max_size.
        """
        end = last and self._fin
        text = self._text
        parts = self._parts
        if text is None and parts is None:
            if end:  # the whole message in one piece: nothing to buffer
                is_text = self.opcode == TEXT
                self.opcode = 0
                return self.message(is_text, chunk, self._compressed)
            if self.opcode == TEXT:
                text = self._text = TextAssembler()
            else:
                parts = self._parts = []
        if self._compressed:
            chunk = self._inflate(chunk, end)
        if text is not None:
            # fed piece by piece so invalid UTF-8 fails at the first bad byte
            text.feed(chunk, end)
            if not end:
                return None
            message: TextMessage | BytesMessage = TextMessage(text.result())
        else:
            assert parts is not None
            if chunk:
                parts.append(chunk)
            if not end:
                return None
            message = BytesMessage(parts[0] if len(parts) == 1 else b"".join(parts))
        self.reset()
        return message

    def message(
        self, is_text: bool, payload: bytes, compressed: bool
    ) -> TextMessage | BytesMessage:
        """A whole message in one piece: inflated within max_size when
        `compressed`, UTF-8 checked when `is_text`."""
        if compressed:
            return self.inflated_message(is_text, payload + TAIL)
        return TextMessage(decode_text(payload)) if is_text else BytesMessage(payload)

    def inflated_message(self, is_text: bool, data: bytes) -> TextMessage | BytesMessage:
        """A whole compressed message in one piece, `data` ending with the
        4 octets of RFC 7692 7.2.2 (as the C scanner hands it out): inflated
        within max_size, UTF-8 checked when `is_text`."""
        deflate = self._deflate
        assert deflate is not None  # RSV1 is refused without deflate
        payload = deflate.inflate_message(data, self.max_size)
        if not is_text:
            return BytesMessage(payload)
        try:  # (decode_text written out: once per message)
            return TextMessage(payload.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in text message") from None

    def _inflate(self, chunk: bytes, end: bool) -> bytes:
        deflate = self._deflate
        assert deflate is not None
        if chunk:
            chunk = deflate.decompress(chunk, self._budget())
            self._size += len(chunk)
        if end:
            tail = deflate.finish(self._budget())
            if tail:
                chunk += tail
        return chunk

    def _budget(self) -> int | None:
        max_size = self.max_size
        return None if max_size is None else max_size - self._size

    def reset(self) -> None:
        """Forget the message in progress (after it ended, or when the
        engine stops reading messages)."""
        self.opcode = 0
        self._text = None
        self._parts = None
