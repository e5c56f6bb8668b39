"""The engine's fast paths give exactly the events of the general paths:
the C whole-message scanner (`scan_frames`), the big-frame payload assembler
(C `PayloadAssembler` and its Python twin), whole-message inflate, and the
C `deflate_frame` (a server's compressed message in one frame) against its
Python twin."""

from __future__ import annotations

import itertools
import os
import zlib
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asgiws.websocket as ws_pkg
from asgiws.websocket import deflate as deflate_module
from asgiws.websocket import frames as frames_module
from asgiws.websocket.connection import ClientEngine, ServerEngine
from asgiws.websocket.deflate import (
    TAIL,
    DeflateFrame,
    DeflateParams,
    MessageDeflate,
    python_deflate_frame,
)
from asgiws.websocket.events import BytesMessage, ConnectionFailed, Event, TextMessage
from asgiws.websocket.frames import (
    ASSEMBLE_THRESHOLD,
    BINARY,
    CLOSE,
    CONT,
    PING,
    TEXT,
    encode_frame,
)
from asgiws.websocket.mask import PythonPayloadAssembler, python_apply_mask
from tests.unit.c_build import build_extension
from tests.unit.test_ws_deflate import zlib_ng_module

SOURCE = Path(ws_pkg.__file__).parent / "_speedups.c"
MASK = b"\x37\xfa\x21\x3d"


@pytest.fixture(scope="module")
def speedups(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The C extension built from source (see `c_build`)."""
    return build_extension(SOURCE, "asgiws.websocket._speedups", tmp_path_factory.mktemp("c"))


def run_engine(
    stream: bytes,
    cuts: list[int],
    *,
    max_size: int | None,
    server: bool = True,
    deflate: DeflateParams | None = None,
) -> tuple[list[Event], list[bytes], tuple[object, ...]]:
    engine = (
        ServerEngine(max_size=max_size, deflate=deflate)
        if server
        else ClientEngine(max_size=max_size, deflate=deflate)
    )
    events: list[Event] = []
    sent: list[bytes] = []
    prev = 0
    for cut in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        events += engine.receive_data(stream[prev:cut])
        sent += engine.data_to_send()
        prev = cut
    # Where the closing handshake stands, which no event shows after an
    # error (the peer's close frame is then taken without one).
    closing = (
        engine.their_state,
        engine.our_state,
        engine.close_received,
        engine.failure,
        engine.should_close_transport(),
    )
    return events, sent, closing


def assert_scanner_matches_general_parser(
    speedups: ModuleType,
    stream: bytes,
    cuts: list[int],
    max_size: int | None,
    server: bool,
    deflate: DeflateParams | None = None,
) -> None:
    """Feed `stream` (split at `cuts`) to an engine without the C scanner and
    to one with it: the events and the bytes sent back must be the same."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frames_module, "c_scan_frames", None)
        expected = run_engine(stream, cuts, max_size=max_size, server=server, deflate=deflate)
        mp.setattr(frames_module, "c_scan_frames", speedups.scan_frames)
        got = run_engine(stream, cuts, max_size=max_size, server=server, deflate=deflate)
    assert got[0] == expected[0]
    assert got[2] == expected[2]
    # A client masks its replies with fresh random keys: compare sizes only.
    assert (got[1] if server else [len(c) for c in got[1]]) == (
        expected[1] if server else [len(c) for c in expected[1]]
    )


# A frame: (opcode, fin, payload).  Text payloads are sometimes invalid UTF-8;
# opcodes include control frames and continuations, so streams exercise the
# hand-over between the C scanner and the general parser, and its errors.
# Close frames carry a good payload, none, or a bad one (1 byte, an invalid
# code, a reason that is not UTF-8), and frames may follow them.
CLOSE_PAYLOADS = (b"\x03\xe8", b"\x03\xe8bye", b"", b"\x03", b"\x03\xed", b"\x0f\xa0\xff")
frame_st = st.tuples(
    st.sampled_from([TEXT, BINARY, CONT, PING, TEXT, BINARY, CLOSE]),
    st.booleans() | st.just(True),
    st.one_of(
        st.text(max_size=300).map(lambda t: t.encode()),
        st.binary(max_size=300),
        st.just(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"),  # surrogate
        st.sampled_from(CLOSE_PAYLOADS),
    ),
)


def encode_stream(frames: list[tuple[int, bool, bytes]], *, masked: bool) -> bytes:
    out = b""
    for opcode, fin, payload in frames:
        if opcode in (PING, CLOSE):
            payload, fin = payload[:125], True
        out += b"".join(encode_frame(opcode, payload, fin=fin, mask=MASK if masked else None))
    return out


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(frame_st, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=6),
    max_size=st.sampled_from([None, 100, 2**20]),
    server=st.booleans(),
)
def test_c_scanner_gives_the_events_of_the_general_parser(
    speedups: ModuleType,
    frames: list[tuple[int, bool, bytes]],
    cuts: list[int],
    max_size: int | None,
    server: bool,
) -> None:
    stream = encode_stream(frames, masked=server)
    assert_scanner_matches_general_parser(speedups, stream, cuts, max_size, server)


# A compressed stream: each message is compressed with one context across
# the stream (context takeover), or sent plain, or is corrupt deflate data;
# some are fragmented, pings interleave.
compressed_frame_st = st.tuples(
    st.sampled_from(["deflate", "deflate", "plain", "corrupt", "fragmented", "ping", "close"]),
    st.booleans(),  # text?
    st.one_of(
        st.text(max_size=300).map(lambda t: t.encode()),
        st.binary(max_size=300),
        st.just(b"caf\xc3"),  # truncated UTF-8
        st.just(b"ab" * 400),  # inflates past a 100-byte limit
    ),
)


def encode_compressed_stream(
    frames: list[tuple[str, bool, bytes]], *, masked: bool, no_context_takeover: bool
) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    mask = MASK if masked else None
    out = b""
    for kind, is_text, payload in frames:
        opcode = TEXT if is_text else BINARY
        if kind == "ping":
            out += b"".join(encode_frame(PING, payload[:125], mask=mask))
            continue
        if kind == "close":
            close = CLOSE_PAYLOADS[len(payload) % len(CLOSE_PAYLOADS)]
            out += b"".join(encode_frame(CLOSE, close, mask=mask))
            continue
        if kind == "plain":
            out += b"".join(encode_frame(opcode, payload, mask=mask))
            continue
        flush = zlib.Z_FULL_FLUSH if no_context_takeover else zlib.Z_SYNC_FLUSH
        data = (compressor.compress(payload) + compressor.flush(flush))[:-4]
        if kind == "corrupt":
            data = b"\xff\xff" + data
        if kind == "fragmented" and len(data) > 1:
            half = len(data) // 2
            out += b"".join(encode_frame(opcode, data[:half], fin=False, rsv1=True, mask=mask))
            out += b"".join(encode_frame(CONT, data[half:], mask=mask))
        else:
            out += b"".join(encode_frame(opcode, data, rsv1=True, mask=mask))
    return out


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(compressed_frame_st, max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    max_size=st.sampled_from([None, 100, 2**20]),
    server=st.booleans(),
    no_context_takeover=st.booleans(),
)
def test_c_scanner_on_compressed_streams_gives_the_events_of_the_general_parser(
    speedups: ModuleType,
    frames: list[tuple[str, bool, bytes]],
    cuts: list[int],
    max_size: int | None,
    server: bool,
    no_context_takeover: bool,
) -> None:
    stream = encode_compressed_stream(
        frames, masked=server, no_context_takeover=no_context_takeover
    )
    params = DeflateParams(
        server_no_context_takeover=no_context_takeover,
        client_no_context_takeover=no_context_takeover,
    )
    assert_scanner_matches_general_parser(speedups, stream, cuts, max_size, server, params)


def test_scanner_takes_compressed_frames_only_when_asked(speedups: ModuleType) -> None:
    # A compressed payload comes out unmasked, with RFC 7692 7.2.2's tail
    # appended, ready for one inflate call.
    tail = speedups.COMPRESSED_TAIL
    assert tail == b"\x00\x00\xff\xff"
    frame = b"".join(encode_frame(TEXT, b"\x01\x02", rsv1=True, mask=MASK))
    assert speedups.scan_frames(frame, 0, True, -1) == ([], 0, None)
    assert speedups.scan_frames(frame, 0, True, -1, True) == (
        [(True, b"\x01\x02" + tail)],
        len(frame),
        None,
    )
    binary = b"".join(encode_frame(BINARY, b"\x03", rsv1=True))
    assert speedups.scan_frames(binary, 0, False, -1, True) == (
        [(False, b"\x03" + tail)],
        len(binary),
        None,
    )


def test_scanner_takes_plain_frames_and_stops_at_anything_else(speedups: ModuleType) -> None:
    stream = encode_stream(
        [
            (TEXT, True, "κόσμε".encode()),
            (BINARY, True, b"\x00\x01"),
            (PING, True, b"p"),
            (TEXT, True, b"after"),
        ],
        masked=True,
    )
    messages, pos, close = speedups.scan_frames(stream, 0, True, -1)
    assert messages == ["κόσμε", b"\x00\x01"]
    assert close is None
    assert stream[pos] == 0x80 | PING  # the ping is left for the general parser
    # Each of these stops the scan before consuming the frame.
    for frame in (
        b"".join(encode_frame(TEXT, b"\xff", mask=MASK)),  # invalid UTF-8
        b"".join(encode_frame(TEXT, b"abc", fin=False, mask=MASK)),  # fragment
        b"".join(encode_frame(TEXT, b"abc", rsv1=True, mask=MASK)),  # compressed
        b"".join(encode_frame(TEXT, b"abc")),  # unmasked on a server
        b"".join(encode_frame(BINARY, b"x" * 200, mask=MASK))[:-1],  # incomplete
    ):
        assert speedups.scan_frames(frame, 0, True, -1) == ([], 0, None)
    assert speedups.scan_frames(
        b"".join(encode_frame(BINARY, b"x" * 11, mask=MASK)), 0, True, 10
    ) == ([], 0, None)


def test_scanner_ends_with_the_peers_close_frame(speedups: ModuleType) -> None:
    """A close frame that keeps the frame rules is taken, unmasked, behind
    the messages before it, and the scan stops there: nothing after the
    peer's close frame counts.  Any other is left to the general parser,
    which words the error."""
    close = b"".join(encode_frame(CLOSE, b"\x03\xe8bye", mask=MASK))
    stream = encode_stream([(TEXT, True, b"last")], masked=True) + close + b"\x81\x80junk"
    assert speedups.scan_frames(stream, 0, True, -1) == (
        ["last"],
        len(stream) - len(b"\x81\x80junk"),
        b"\x03\xe8bye",
    )
    # unmasked, from a server to a client; and an empty payload
    assert speedups.scan_frames(b"\x88\x00", 0, False, -1) == ([], 2, b"")
    # the payload is judged by the engine, not here (1 byte: a protocol error)
    assert speedups.scan_frames(b"".join(encode_frame(CLOSE, b"\x03", mask=MASK)), 0, True, -1)[
        2
    ] == b"\x03"
    for frame in (
        b"".join(encode_frame(CLOSE, b"\x03\xe8")),  # unmasked on a server
        b"".join(encode_frame(CLOSE, b"\x03\xe8", rsv1=True, mask=MASK)),  # RSV1
        b"".join(encode_frame(CLOSE, b"\x03\xe8", fin=False, mask=MASK)),  # not final
        b"".join(encode_frame(CLOSE, b"\x03\xe8" + b"x" * 124, mask=MASK)),  # 126 bytes
        close[:-1],  # incomplete
        close[:5],  # incomplete mask
    ):
        assert speedups.scan_frames(frame, 0, True, -1, True) == ([], 0, None)


def test_scan_frames_refuses_bad_arguments(speedups: ModuleType) -> None:
    frame = b"".join(encode_frame(TEXT, b"abc", mask=MASK))
    with pytest.raises(TypeError, match="4 or 5 arguments"):
        speedups.scan_frames(frame, 0, True)
    with pytest.raises(TypeError):
        speedups.scan_frames(frame.decode("latin-1"), 0, True, -1)  # not a buffer
    with pytest.raises(TypeError):
        speedups.scan_frames(frame, "0", True, -1)
    with pytest.raises(ValueError, match="pos out of range"):
        speedups.scan_frames(frame, len(frame) + 1, True, -1)
    # a bytearray, from a position, as the decoder's buffer is read
    assert speedups.scan_frames(bytearray(b"xx" + frame), 2, True, -1) == (
        ["abc"],
        2 + len(frame),
        None,
    )


def test_decoder_holds_no_bytes_once_the_scanner_took_them_all(speedups: ModuleType) -> None:
    # An idle connection keeps no received bytes, and the engine skips the
    # general parser only when nothing is left for it.
    decoder = frames_module.FrameDecoder(expect_masked=True, scan=speedups.scan_frames)
    whole = encode_stream([(TEXT, True, b"one"), (BINARY, True, b"two")], masked=True)
    decoder.feed(whole)
    assert decoder.whole_messages(None) == (["one", b"two"], None)
    assert decoder.idle
    assert len(decoder._buf) == 0  # (the bytes themselves, not just the count)
    partial = encode_stream([(TEXT, True, b"three")], masked=True)
    decoder.feed(whole + partial[:-1])
    assert decoder.whole_messages(None) == (["one", b"two"], None)
    assert not decoder.idle
    assert decoder.buffered == len(partial) - 1
    decoder.feed(partial[-1:])
    assert decoder.whole_messages(None) == (["three"], None)
    assert decoder.idle
    # A frame whose payload is handed out piece by piece is not over
    # when the bytes received so far are.
    big = b"".join(encode_frame(BINARY, b"x" * 200, mask=MASK))
    decoder.feed(big[:50])
    part = decoder.next_part()
    assert part is not None and not part.last
    assert decoder.buffered == 0
    assert not decoder.idle


def vars_of(part: frames_module.FramePart | None) -> dict[str, object] | None:
    """A frame part's fields (FramePart has slots and no equality)."""
    if part is None:
        return None
    return {name: getattr(part, name) for name in frames_module.FramePart.__slots__}


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from([TEXT, BINARY, PING, CLOSE]),
            st.booleans(),  # compressed (RSV1, data frames only)
            st.binary(max_size=300),
        ),
        max_size=6,
    ),
    cuts=st.lists(st.integers(0, 2000), max_size=5),
)
@pytest.mark.parametrize("scanner", [True, False], ids=["c", "python"])
def test_feed_whole_is_feed_then_whole_messages_then_idle(
    speedups: ModuleType, scanner: bool, frames: list[tuple[int, bool, bytes]], cuts: list[int]
) -> None:
    """What the engine's first pass takes from each read (the scanner reads
    the fresh bytes in place) is what feeding them and scanning the buffer
    takes; a ping stops both, for next_part(), and a close frame ends
    both.  Without the scanner, nothing is taken and everything is left to
    next_part()."""
    stream = b"".join(
        b"".join(
            encode_frame(
                op,
                data[:125] if op in (PING, CLOSE) else data,
                rsv1=rsv1 and op in (TEXT, BINARY),
                mask=MASK,
            )
        )
        for op, rsv1, data in frames
    )
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    one_call, two_calls = (
        frames_module.FrameDecoder(
            expect_masked=True, compression=True, scan=speedups.scan_frames if scanner else None
        )
        for _ in range(2)
    )
    for start, end in itertools.pairwise(bounds):
        piece = stream[start:end]
        two_calls.feed(piece)
        messages, close = two_calls.whole_messages(None)
        expected = (messages, two_calls.idle, close)
        assert one_call.feed_whole(piece, None) == expected
        assert one_call.buffered == two_calls.buffered
        if close is not None:
            break  # nothing after the peer's close frame is read
        if not expected[1] and one_call.buffered >= 2:
            # what is left starts with a frame the scanner does not take
            parts = [decoder.next_part() for decoder in (one_call, two_calls)]
            assert [vars_of(part) for part in parts] == [vars_of(parts[1])] * 2


def test_invalid_utf8_behind_good_messages_fails_with_1007(speedups: ModuleType) -> None:
    stream = encode_stream([(TEXT, True, b"good"), (TEXT, True, b"bad \xc0\xaf")], masked=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frames_module, "c_scan_frames", speedups.scan_frames)
        events, _, _ = run_engine(stream, [], max_size=None)
    assert events[0] == TextMessage("good")
    assert isinstance(events[1], ConnectionFailed) and events[1].code == 1007


# --- big binary frames: assembled in one buffer ----------------------------------


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
    masked=st.booleans(),
)
def test_c_and_python_assemblers_agree(
    speedups: ModuleType, data: bytes, cuts: list[int], masked: bool
) -> None:
    mask = MASK if masked else None
    expected = python_apply_mask(data, MASK) if masked else data
    for assembler in (speedups.PayloadAssembler(len(data)), PythonPayloadAssembler(len(data))):
        prev = 0
        for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
            assembler.add(memoryview(data)[prev:cut], mask)
            prev = cut
        assert assembler.filled == len(data)
        assert assembler.take() == expected


def test_assemblers_refuse_overflow_and_early_take(speedups: ModuleType) -> None:
    for assembler in (speedups.PayloadAssembler(4), PythonPayloadAssembler(4)):
        assembler.add(b"ab", None)
        with pytest.raises(ValueError):
            assembler.take()
        with pytest.raises(ValueError):
            assembler.add(b"cde", None)
        with pytest.raises(ValueError):
            assembler.add(b"cd", b"123")  # a mask is 4 bytes
        assembler.add(b"cd", None)
        assert assembler.take() == b"abcd"


@pytest.mark.parametrize("implementation", ["c", "python"])
@pytest.mark.parametrize("piece", [1000, 65536, 300_000])
def test_big_binary_messages_arrive_whole_in_any_split(
    speedups: ModuleType, implementation: str, piece: int
) -> None:
    big = os.urandom(ASSEMBLE_THRESHOLD * 3 + 5)
    stream = b"".join(
        [
            *encode_frame(BINARY, big, mask=MASK),
            *encode_frame(TEXT, b"between", mask=MASK),
            # a fragmented binary message made of big frames, a ping inside
            *encode_frame(BINARY, big[: ASSEMBLE_THRESHOLD + 1], fin=False, mask=MASK),
            *encode_frame(PING, b"p", mask=MASK),
            *encode_frame(CONT, big, fin=True, mask=MASK),
        ]
    )
    cuts = list(range(piece, len(stream), piece))
    assembler = speedups.PayloadAssembler if implementation == "c" else PythonPayloadAssembler
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frames_module, "PayloadAssembler", assembler)
        events, sent, _ = run_engine(stream, cuts, max_size=2**20)
    datas = [e.data for e in events if isinstance(e, (TextMessage, BytesMessage))]
    assert datas == [big, "between", big[: ASSEMBLE_THRESHOLD + 1] + big]
    assert len(sent) == 1  # the pong


def test_a_too_big_frame_is_refused_from_its_header_before_any_buffer() -> None:
    engine = ServerEngine(max_size=ASSEMBLE_THRESHOLD * 2)
    header = b"".join(encode_frame(BINARY, bytes(ASSEMBLE_THRESHOLD * 2 + 1), mask=MASK))[:14]
    events = engine.receive_data(header)
    assert isinstance(events[0], ConnectionFailed) and events[0].code == 1009


# --- deflate ---------------------------------------------------------------------


def test_no_context_takeover_messages_inflate_with_a_fresh_window() -> None:
    """Z_FULL_FLUSH instead of a new compressor: every message still decodes
    on its own, as RFC 7692 7.1.1.1 requires."""
    codec = MessageDeflate(DeflateParams(server_no_context_takeover=True), is_server=True)
    texts = [
        b"a message that repeats itself, a message that repeats itself " * i for i in (1, 3, 2, 3)
    ]
    for text in texts:
        compressed = codec.compress(text)
        inflater = zlib.decompressobj(wbits=-15)
        assert inflater.decompress(compressed + b"\x00\x00\xff\xff") == text


@given(messages=st.lists(st.binary(max_size=2000), min_size=1, max_size=5))
def test_whole_message_inflate_matches_streamed_inflate(messages: list[bytes]) -> None:
    sender = MessageDeflate(DeflateParams(), is_server=False)
    whole = MessageDeflate(DeflateParams(), is_server=True)
    streamed = MessageDeflate(DeflateParams(), is_server=True)
    for message in messages:
        compressed = sender.compress(message)
        assert whole.decompress_message(compressed, None) == message
        half = len(compressed) // 2
        out = streamed.decompress(compressed[:half], None)
        out += streamed.decompress(compressed[half:], None)
        assert out + streamed.finish(None) == message


# --- compressing a whole message into a frame -------------------------------------


def deflate_backends() -> list[ModuleType]:
    """The zlibs a server compresses with: the standard library's and zlib-ng."""
    return [zlib, zlib_ng_module()]


def frames_of(
    frame_builder: DeflateFrame,
    backend: ModuleType,
    messages: list[tuple[int, bytes]],
    flush_mode: int,
) -> list[bytes]:
    """Each message through one compressor (context kept across messages, as
    a connection keeps it) into a frame by `frame_builder`."""
    compressor = backend.compressobj(6, backend.DEFLATED, -14, 5)
    return [frame_builder(compressor, data, flush_mode, opcode) for opcode, data in messages]


def assert_frames_decode_to(frames: list[bytes], messages: list[tuple[int, bytes]]) -> None:
    """A client engine reads the frames back as the messages sent."""
    client = ClientEngine(max_size=None, deflate=DeflateParams(server_max_window_bits=14))
    events = client.receive_data(b"".join(frames))
    assert events == [
        TextMessage(data.decode()) if opcode == TEXT else BytesMessage(data)
        for opcode, data in messages
    ]


message_st = st.one_of(
    st.tuples(st.just(TEXT), st.text(max_size=400).map(str.encode)),
    st.tuples(st.just(BINARY), st.binary(max_size=400)),  # incompressible: 126+ bytes
    st.tuples(st.sampled_from([TEXT, BINARY]), st.just(b"")),
)


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(message_st, min_size=1, max_size=8),
    flush_mode=st.sampled_from([zlib.Z_SYNC_FLUSH, zlib.Z_FULL_FLUSH]),
    backend_index=st.sampled_from([0, 1]),
)
def test_c_deflate_frame_builds_the_frames_of_the_python_one(
    speedups: ModuleType,
    messages: list[tuple[int, bytes]],
    flush_mode: int,
    backend_index: int,
) -> None:
    backend = deflate_backends()[backend_index]
    got = frames_of(speedups.deflate_frame, backend, messages, flush_mode)
    assert got == frames_of(python_deflate_frame, backend, messages, flush_mode)
    assert_frames_decode_to(got, messages)


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 200_000])
def test_deflate_frame_headers_at_every_length_boundary(speedups: ModuleType, size: int) -> None:
    """Random bytes do not compress: the frame's payload is the message's
    size plus a few bytes, so these sizes cross the 7-, 16- and 64-bit
    length encodings (RFC 6455 5.2) near their edges."""
    message: list[tuple[int, bytes]] = [(BINARY, os.urandom(size))]
    for backend in deflate_backends():
        c_frames, python_frames = (
            frames_of(builder, backend, message, zlib.Z_SYNC_FLUSH)
            for builder in (speedups.deflate_frame, python_deflate_frame)
        )
        assert c_frames == python_frames
        assert_frames_decode_to(c_frames, message)


def test_deflate_frame_refuses_bad_arguments(speedups: ModuleType) -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -14)
    with pytest.raises(TypeError, match="4 arguments"):
        speedups.deflate_frame(compressor, b"x", zlib.Z_SYNC_FLUSH)
    with pytest.raises(ValueError, match="opcode"):
        speedups.deflate_frame(compressor, b"x", zlib.Z_SYNC_FLUSH, 16)
    with pytest.raises(TypeError):  # a str is not a buffer: the compressor's own error
        speedups.deflate_frame(compressor, "text", zlib.Z_SYNC_FLUSH, TEXT)
    with pytest.raises(AttributeError):
        speedups.deflate_frame(object(), b"x", zlib.Z_SYNC_FLUSH, TEXT)


@pytest.mark.parametrize("c_path", [True, False], ids=["c", "python"])
def test_server_engine_sends_compressed_messages_a_client_reads(
    speedups: ModuleType, monkeypatch: pytest.MonkeyPatch, c_path: bool
) -> None:
    """What a server sends with deflate negotiated, either way it builds the
    frames: a client engine reads the same messages back, context kept."""
    monkeypatch.setattr(
        deflate_module,
        "deflate_frame",
        speedups.deflate_frame if c_path else python_deflate_frame,
    )
    params = DeflateParams(server_max_window_bits=14)
    server = ServerEngine(max_size=None, deflate=params)
    client = ClientEngine(max_size=None, deflate=params)
    texts = ["hello " * 40, "", "hello " * 40, "κόσμε"]
    frames: list[bytes] = []
    for text in texts:
        frames += server.send_text(text)
    frames += server.send_binary(b"\x00\xff" * 300)
    events = client.receive_data(b"".join(frames))
    assert events == [*map(TextMessage, texts), BytesMessage(b"\x00\xff" * 300)]
    # RSV1 on each: these went out compressed
    assert all(frame[0] & 0x40 for frame in frames)


class FixedOutput:
    """A compressor whose output is given: frames of exact payload lengths,
    and a tail that straddles the two calls' outputs."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        self.head, self.tail = head, tail

    def compress(self, data: bytes) -> bytes:
        return self.head

    def flush(self, mode: int) -> bytes:
        return self.tail


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 65537])
@pytest.mark.parametrize("split", [0, 1, 2, 3, 4], ids=lambda n: f"tail-{n}-in-flush")
def test_deflate_frame_encodes_exact_lengths_and_a_split_tail(
    speedups: ModuleType, length: int, split: int
) -> None:
    body = b"\x01" * length + TAIL
    cut = len(body) - split  # the flush's output holds `split` octets of the tail
    compressor = FixedOutput(body[:cut], body[cut:])
    frame = speedups.deflate_frame(compressor, b"", zlib.Z_SYNC_FLUSH, BINARY)
    assert frame == python_deflate_frame(compressor, b"", zlib.Z_SYNC_FLUSH, BINARY)
    assert frame == b"".join(encode_frame(BINARY, b"\x01" * length, rsv1=True))
    # no tail at the end: nothing is cut
    untouched = FixedOutput(b"", b"\x01" * length)
    assert speedups.deflate_frame(untouched, b"", zlib.Z_SYNC_FLUSH, TEXT) == b"".join(
        encode_frame(TEXT, b"\x01" * length, rsv1=True)
    )


@pytest.mark.parametrize("server", [True, False], ids=["server", "client"])
def test_a_close_frame_behind_a_message_that_fails_still_closes(
    speedups: ModuleType, server: bool
) -> None:
    """The scanner takes a compressed message and the close frame behind it
    in one read; the message fails to inflate (1007), and the close frame
    still counts, as when the general parser reads it while discarding."""
    stream = encode_compressed_stream(
        [("corrupt", True, b"hello"), ("close", True, b"")],
        masked=server,
        no_context_takeover=False,
    )
    assert_scanner_matches_general_parser(speedups, stream, [], None, server, DeflateParams())
    events, _, closing = run_engine(
        stream, [], max_size=None, server=server, deflate=DeflateParams()
    )
    assert isinstance(events[0], ConnectionFailed)
    assert closing[2] is not None  # the peer's close frame was received
