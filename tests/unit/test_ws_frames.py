"""Frame encoding and the incremental frame decoder: reserved bits, opcodes,
control frame rules, masking direction, close payloads.  (Message rules --
fragmentation, size limits -- are tested with the assembler, in
test_ws_messages.py.)"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgiws.websocket.errors import ProtocolError
from asgiws.websocket.frames import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    TEXT,
    FrameDecoder,
    encode_close_payload,
    encode_frame,
    encode_header,
    parse_close_payload,
)

MASK = b"\x11\x22\x33\x44"


def raw_frame(
    b0: int, payload: bytes = b"", *, masked: bool = True, length: int | None = None
) -> bytes:
    """A frame built by hand, to send what our encoder would refuse to."""
    n = len(payload) if length is None else length
    mbit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = struct.pack(">BBH", b0, mbit | 126, n)
    else:
        head = struct.pack(">BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


class Collector:
    """Joins the parts of each frame, across feeds: (opcode, fin, rsv1, payload)."""

    def __init__(self, parser: FrameDecoder) -> None:
        self.parser = parser
        self.pending = b""

    def feed(self, data: bytes) -> list[tuple[int, bool, bool, bytes]]:
        self.parser.feed(data)
        frames = []
        while (part := self.parser.next_part()) is not None:
            self.pending += part.payload
            if part.last:
                frames.append((part.opcode, part.fin, part.rsv1, self.pending))
                self.pending = b""
        return frames


def parse_all(parser: FrameDecoder, data: bytes) -> list[tuple[int, bool, bool, bytes]]:
    return Collector(parser).feed(data)


@pytest.mark.parametrize(
    "length, header_size", [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)]
)
def test_header_uses_the_minimal_length_encoding(length: int, header_size: int) -> None:
    assert len(encode_header(BINARY, length)) == header_size
    assert len(encode_header(BINARY, length, mask=MASK)) == header_size + 4
    frame = b"".join(encode_frame(BINARY, b"x" * length, mask=MASK))
    assert parse_all(FrameDecoder(expect_masked=True), frame) == [
        (BINARY, True, False, b"x" * length)
    ]


def test_big_payload_is_a_separate_chunk_small_frame_is_one() -> None:
    big = encode_frame(BINARY, b"a" * 5000)
    assert len(big) == 2 and big[1] == b"a" * 5000
    assert encode_frame(TEXT, b"hi") == [b"\x81\x02hi"]


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.sampled_from([BINARY, PING]), st.binary(max_size=300)), min_size=1, max_size=6
    ),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_parser_gives_the_same_frames_at_any_split(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    frames = [(op, p[:125] if op == PING else p) for op, p in frames]
    stream = b"".join(b"".join(encode_frame(op, p, mask=MASK)) for op, p in frames)
    parser = FrameDecoder(expect_masked=True)
    collector = Collector(parser)
    got = []
    prev = 0
    for cut in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        got += collector.feed(stream[prev:cut])
        prev = cut
    # a frame split over several feeds comes in parts; join per frame
    assert [(op, p) for op, _, _, p in got] == frames
    assert parser.buffered == 0


def test_data_payload_is_handed_out_as_it_arrives() -> None:
    parser = FrameDecoder(expect_masked=True)
    frame = b"".join(encode_frame(BINARY, b"0123456789", mask=MASK))
    parser.feed(frame[:9])  # 6 header bytes + 3 payload bytes
    part = parser.next_part()
    assert part is not None and part.first and not part.last and part.payload == b"012"
    assert parser.next_part() is None
    parser.feed(frame[9:])
    part = parser.next_part()
    assert part is not None and not part.first and part.last and part.payload == b"3456789"


def test_control_frames_are_handed_out_whole() -> None:
    parser = FrameDecoder(expect_masked=True)
    frame = b"".join(encode_frame(PING, b"abcdef", mask=MASK))
    parser.feed(frame[:-1])
    assert parser.next_part() is None
    parser.feed(frame[-1:])
    part = parser.next_part()
    assert part is not None and part.first and part.last and part.payload == b"abcdef"


def expect_error(data: bytes, code: int, *, server: bool = True, compression: bool = False) -> str:
    parser = FrameDecoder(expect_masked=server, compression=compression)
    with pytest.raises(ProtocolError) as info:
        parse_all(parser, data)
    assert info.value.code == code
    return info.value.reason


@pytest.mark.parametrize(
    "data, words",
    [
        (raw_frame(0x80 | 0x20 | BINARY), "RSV2"),
        (raw_frame(0x80 | 0x10 | BINARY), "RSV3"),
        (raw_frame(0x80 | 0x40 | BINARY), "RSV1"),
        *[(raw_frame(0x80 | op), "opcode") for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)],
        (raw_frame(0x80 | PING, b"x" * 126), "125"),
        (raw_frame(PING, b"x"), "fragmented control"),
        (raw_frame(0x80 | BINARY, b"x", masked=False), "unmasked"),
    ],
)
def test_protocol_errors_are_1002(data: bytes, words: str) -> None:
    assert words in expect_error(data, 1002)


def test_client_rejects_masked_frames() -> None:
    assert "masked frame from server" in expect_error(raw_frame(0x81, b"x"), 1002, server=False)


def test_64_bit_length_with_most_significant_bit_is_1002() -> None:
    head = struct.pack(">BBQ", 0x82, 0x80 | 127, 1 << 63)
    assert "most significant" in expect_error(head, 1002)


def test_rsv1_with_compression_only_on_first_data_frame() -> None:
    expect_error(raw_frame(0x80 | 0x40 | PING), 1002, compression=True)
    expect_error(
        raw_frame(0x40 | TEXT, b"x") + raw_frame(0x80 | 0x40 | CONT, b"y"), 1002, compression=True
    )
    parser = FrameDecoder(expect_masked=True, compression=True)
    assert parse_all(parser, raw_frame(0x40 | TEXT, b"x") + raw_frame(0x80 | CONT, b"y")) == [
        (TEXT, False, True, b"x"),
        (CONT, True, False, b"y"),
    ]


def test_without_a_gate_data_frames_are_frames_only() -> None:
    """No message rules without the message layer: what the engine relies on
    while it discards input after a failure."""
    stream = raw_frame(0x80 | CONT, b"x") + raw_frame(TEXT, b"a") + raw_frame(0x80 | BINARY, b"b")
    assert [op for op, *_ in parse_all(FrameDecoder(expect_masked=True), stream)] == [
        CONT,
        TEXT,
        BINARY,
    ]


# --- close payloads -----------------------------------------------------------------

VALID_CODES = [
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    3999,
    4000,
    4999,
]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_close_codes_round_trip(code: int) -> None:
    assert parse_close_payload(encode_close_payload(code, "bye")) == (code, "bye")


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_codes_are_refused_both_ways(code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(code.to_bytes(2, "big"))
    assert info.value.code == 1002
    if code != 1005:
        with pytest.raises(ValueError):
            encode_close_payload(code, "")


def test_close_payload_edge_cases() -> None:
    assert parse_close_payload(b"") == (1005, "")
    assert encode_close_payload(1005, "") == b""
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03")
    assert info.value.code == 1002
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03\xe8\xff")
    assert info.value.code == 1007
    assert len(encode_close_payload(1000, "é" * 61 + "x")) == 125
    with pytest.raises(ValueError):
        encode_close_payload(1000, "é" * 62)
    with pytest.raises(ValueError):
        encode_close_payload(1005, "reason without code")


def test_close_frame_parses_as_control() -> None:
    parser = FrameDecoder(expect_masked=True)
    frame = b"".join(encode_frame(CLOSE, encode_close_payload(1000, "x"), mask=MASK))
    assert parse_all(parser, frame) == [(CLOSE, True, False, b"\x03\xe8x")]
