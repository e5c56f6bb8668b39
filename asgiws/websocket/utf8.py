"""UTF-8 validation of text messages that fails at the first invalid byte.

RFC 6455 section 8.1: "When an endpoint is to interpret a byte stream as UTF-8
but finds that the byte stream is not, in fact, a valid UTF-8 stream, that
endpoint MUST _Fail the WebSocket Connection_."  The incremental decoder keeps
a partial sequence across fragment (and read) boundaries and raises as soon as
a sequence can no longer become valid, so a message fails at the chunk that
holds the bad byte, not at its end.
"""

from __future__ import annotations

import codecs

from asgiws.websocket.errors import CloseCode, ProtocolError

_Decoder = codecs.getincrementaldecoder("utf-8")


def decode_text(data: bytes) -> str:
    """Decode a complete text payload, or raise ProtocolError(1007)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in text message") from None


class TextAssembler:
    """Decodes a text message chunk by chunk and joins the decoded parts."""

    __slots__ = ("_decoder", "_parts")

    def __init__(self) -> None:
        self._decoder = _Decoder()
        self._parts: list[str] = []

    def feed(self, data: bytes, final: bool = False) -> None:
        """Add the next bytes of the message; raise ProtocolError(1007) at the
        first byte that cannot be part of valid UTF-8 (or, when `final`, a
        truncated sequence at the end)."""
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in text message") from None
        if text:
            self._parts.append(text)

    def result(self) -> str:
        parts = self._parts
        return parts[0] if len(parts) == 1 else "".join(parts)
