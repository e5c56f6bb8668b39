"""The message assembler: fragmentation rules and the size limit from the
frame headers (before buffering), UTF-8 failing fast, bounded inflate, and
the decoder asking it at each data frame's header."""

from __future__ import annotations

import struct
import zlib

import pytest

from asgiws.websocket.deflate import DeflateParams, MessageDeflate
from asgiws.websocket.errors import ProtocolError
from asgiws.websocket.events import BytesMessage, TextMessage
from asgiws.websocket.frames import ASSEMBLE_THRESHOLD, BINARY, CLOSE, CONT, TEXT, FrameDecoder
from asgiws.websocket.messages import MessageAssembler

MASK = b"\x11\x22\x33\x44"


def raw_frame(b0: int, payload: bytes = b"") -> bytes:
    """A masked client frame built by hand."""
    n = len(payload)
    head = bytes((b0, 0x80 | n)) if n < 126 else struct.pack(">BBH", b0, 0x80 | 126, n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def decode(
    data: bytes, *, max_size: int | None = None, deflate: MessageDeflate | None = None
) -> list[TextMessage | BytesMessage]:
    """The data messages in `data`, through a decoder gated by an assembler."""
    messages = MessageAssembler(max_size, deflate)
    decoder = FrameDecoder(expect_masked=True, compression=deflate is not None)
    decoder.feed(data)
    out = []
    while (part := decoder.next_part(messages)) is not None:
        if part.opcode >= CLOSE:
            continue  # the engine's business
        message = messages.add(part.payload, part.last)
        if message is not None:
            out.append(message)
    return out


def error_code(data: bytes, **kwargs: int | None) -> int:
    with pytest.raises(ProtocolError) as info:
        decode(data, **kwargs)  # type: ignore[arg-type]
    return info.value.code


# --- fragmentation (RFC 6455 5.4) -------------------------------------------------


def test_fragments_join_into_one_message_with_control_frames_between_them() -> None:
    stream = raw_frame(TEXT, b"hel") + raw_frame(0x89, b"ping") + raw_frame(0x80 | CONT, b"lo")
    assert decode(stream) == [TextMessage("hello")]
    stream = raw_frame(BINARY, b"a") + raw_frame(CONT, b"") + raw_frame(0x80 | CONT, b"b")
    assert decode(stream) == [BytesMessage(b"ab")]


@pytest.mark.parametrize(
    "stream, words",
    [
        (raw_frame(0x80 | CONT, b"x"), "continuation frame without a message"),
        (raw_frame(TEXT, b"a") + raw_frame(0x80 | TEXT, b"b"), "in progress"),
        (raw_frame(BINARY, b"a") + raw_frame(0x80 | BINARY, b"b"), "in progress"),
    ],
)
def test_fragmentation_errors_are_1002_from_the_header(stream: bytes, words: str) -> None:
    messages = MessageAssembler(None, None)
    decoder = FrameDecoder(expect_masked=True)
    decoder.feed(stream)
    with pytest.raises(ProtocolError) as info:
        while (part := decoder.next_part(messages)) is not None:
            messages.add(part.payload, part.last)
    assert info.value.code == 1002 and words in info.value.reason


def test_the_message_in_progress_is_visible_and_reset() -> None:
    messages = MessageAssembler(None, None)
    assert messages.opcode == 0
    messages.start_frame(TEXT, False, False, 3)
    assert messages.add(b"abc", True) is None
    assert messages.opcode == TEXT
    messages.reset()
    assert messages.opcode == 0
    messages.start_frame(BINARY, True, False, 1)  # no "in progress" error after reset
    assert messages.add(b"z", True) == BytesMessage(b"z")
    assert messages.opcode == 0


# --- the size limit, before buffering ----------------------------------------------


def test_size_limit_counts_all_fragments() -> None:
    ok = raw_frame(BINARY, b"a" * 6) + raw_frame(0x80 | CONT, b"b" * 4)
    assert decode(ok, max_size=10) == [BytesMessage(b"a" * 6 + b"b" * 4)]
    too_big = raw_frame(BINARY, b"a" * 6) + raw_frame(0x80 | CONT, b"b" * 5)
    assert error_code(too_big, max_size=10) == 1009
    assert error_code(raw_frame(0x80 | TEXT, b"x" * 11), max_size=10) == 1009


def test_too_big_length_fails_from_the_header_alone() -> None:
    # 14 header bytes announcing 2**40 bytes: refused before any payload byte
    head = struct.pack(">BBQ", 0x82, 0x80 | 127, 2**40) + MASK
    messages = MessageAssembler(2**20, None)
    decoder = FrameDecoder(expect_masked=True)
    decoder.feed(head)
    with pytest.raises(ProtocolError) as info:
        decoder.next_part(messages)
    assert info.value.code == 1009 and "exceeds" in info.value.reason


def test_the_gate_sees_each_header_once_even_when_it_arrives_in_pieces() -> None:
    """A header split over feeds must not count the frame twice."""
    frame = raw_frame(0x80 | BINARY, b"x" * 200)  # 8-byte header
    messages = MessageAssembler(200, None)
    decoder = FrameDecoder(expect_masked=True)
    out = []
    for i in range(len(frame)):
        decoder.feed(frame[i : i + 1])
        while (part := decoder.next_part(messages)) is not None:
            message = messages.add(part.payload, part.last)
            if message is not None:
                out.append(message)
    assert out == [BytesMessage(b"x" * 200)]


def test_compressed_messages_are_bounded_after_inflating_not_on_the_wire() -> None:
    messages = MessageAssembler(4, MessageDeflate(DeflateParams(), is_server=True))
    assert messages.start_frame(BINARY, True, True, 100) is False  # no error: 100 > 4 on the wire
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = (compressor.compress(b"12345") + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    deflate = MessageDeflate(DeflateParams(), is_server=True)
    with pytest.raises(ProtocolError) as info:
        decode(raw_frame(0xC2, data), max_size=4, deflate=deflate)
    assert info.value.code == 1009
    deflate = MessageDeflate(DeflateParams(), is_server=True)
    assert decode(raw_frame(0xC2, data), max_size=5, deflate=deflate) == [BytesMessage(b"12345")]


def test_inflate_is_bounded_across_fragments() -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = (compressor.compress(b"a" * 1200) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    half = len(data) // 2
    stream = raw_frame(0x40 | BINARY, data[:half]) + raw_frame(0x80 | CONT, data[half:])
    deflate = MessageDeflate(DeflateParams(), is_server=True)
    assert decode(stream, max_size=1200, deflate=deflate) == [BytesMessage(b"a" * 1200)]
    deflate = MessageDeflate(DeflateParams(), is_server=True)
    with pytest.raises(ProtocolError) as info:
        decode(stream, max_size=1199, deflate=deflate)
    assert info.value.code == 1009


# --- collecting big binary frames whole ----------------------------------------------


@pytest.mark.parametrize(
    "opcode, rsv1, max_size, collect",
    [
        (BINARY, False, 2**20, True),
        (TEXT, False, 2**20, False),  # text is validated as it streams in
        (BINARY, True, 2**20, False),  # compressed: inflated as it streams in
        (BINARY, False, None, False),  # nothing bounds the buffer collecting would allocate
    ],
)
def test_only_bounded_plain_binary_frames_may_be_collected_whole(
    opcode: int, rsv1: bool, max_size: int | None, collect: bool
) -> None:
    deflate = MessageDeflate(DeflateParams(), is_server=True)
    assert MessageAssembler(max_size, deflate).start_frame(opcode, True, rsv1, 10) is collect


def test_continuations_of_a_binary_message_are_collected_whole_too() -> None:
    messages = MessageAssembler(2**20, None)
    assert messages.start_frame(BINARY, False, False, 10) is True
    messages.add(b"x" * 10, True)
    assert messages.start_frame(CONT, True, False, 10) is True


def test_decoder_collects_a_big_frame_whole_only_when_the_gate_says_so() -> None:
    big = bytes(range(256)) * (ASSEMBLE_THRESHOLD // 256 + 1)
    frame = (
        struct.pack(">BBQ", 0x82, 0x80 | 127, len(big))
        + MASK
        + bytes(b ^ MASK[i % 4] for i, b in enumerate(big))
    )
    for max_size, whole in ((2**20, True), (None, False)):
        messages = MessageAssembler(max_size, None)
        decoder = FrameDecoder(expect_masked=True)
        decoder.feed(frame[:100])
        part = decoder.next_part(messages)
        if whole:
            assert part is None  # collecting, nothing handed out yet
        else:
            assert part is not None and part.first and not part.last
        decoder.feed(frame[100:])
        part = decoder.next_part(messages)
        assert part is not None and part.last
        if whole:
            assert part.first and part.payload == big


# --- UTF-8 (RFC 6455 8.1) ------------------------------------------------------------


def test_utf8_fails_at_the_piece_holding_the_bad_byte() -> None:
    messages = MessageAssembler(None, None)
    messages.start_frame(TEXT, False, False, 5)
    assert messages.add("κό".encode()[:3], False) is None  # a split code point is fine
    with pytest.raises(ProtocolError) as info:
        messages.add(b"\xff", False)  # the message is far from over
    assert info.value.code == 1007


def test_a_truncated_code_point_fails_at_the_end_of_the_message() -> None:
    messages = MessageAssembler(None, None)
    messages.start_frame(TEXT, False, False, 2)
    assert messages.add("€".encode()[:2], True) is None
    messages.start_frame(CONT, True, False, 0)
    with pytest.raises(ProtocolError) as info:
        messages.add(b"", True)
    assert info.value.code == 1007


def test_whole_messages_are_checked_the_same_way() -> None:
    messages = MessageAssembler(None, MessageDeflate(DeflateParams(), is_server=True))
    assert messages.message(True, "é".encode(), False) == TextMessage("é")
    assert messages.message(False, b"\xff", False) == BytesMessage(b"\xff")
    with pytest.raises(ProtocolError) as info:
        messages.message(True, b"\xff", False)
    assert info.value.code == 1007
    with pytest.raises(ProtocolError) as info:
        messages.message(False, b"\xff\xff\xff", True)  # not deflate data
    assert info.value.code == 1007
