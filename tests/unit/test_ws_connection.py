"""The engine: message assembly at any split, control frames, the close
handshake, failure handling (events before the error first), limits,
and interop with wsproto as a test-only peer."""

from __future__ import annotations

import random
import string
import struct
import tracemalloc
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import events as wse
from wsproto.connection import Connection, ConnectionType

from asgiws.websocket import (
    BytesMessage,
    ClientEngine,
    Close,
    CloseReceived,
    ConnectionFailed,
    DeflateParams,
    EngineState,
    Event,
    InvalidState,
    Ping,
    Pong,
    ServerEngine,
    TextMessage,
    encode_server_frame,
)
from asgiws.websocket.frames import BINARY, CONT, TEXT, encode_frame
from asgiws.websocket.zlib_backend import zlib as backend_zlib

MASK = b"\x01\x02\x03\x04"


def state_of(engine: ServerEngine | ClientEngine) -> EngineState:
    """The state read afresh (a plain `engine.state` stays narrowed by an earlier assert)."""
    return engine.state


def masked(b0: int, payload: bytes) -> bytes:
    """A client frame built by hand (to send what the engine refuses to)."""
    n = len(payload)
    head = bytes((b0, 0x80 | n)) if n < 126 else struct.pack(">BBH", b0, 0x80 | 126, n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def feed(
    engine: ServerEngine | ClientEngine, data: bytes, cuts: list[int] | None = None
) -> list[Event]:
    events: list[Event] = []
    prev = 0
    for cut in [*sorted(c for c in (cuts or []) if c <= len(data)), len(data)]:
        events += engine.receive_data(data[prev:cut])
        prev = cut
    return events


def failure_code(events: list[Event], index: int = 0) -> int:
    event = events[index]
    assert isinstance(event, ConnectionFailed), events
    return event.code


def joined(chunks: list[bytes]) -> bytes:
    return b"".join(chunks)


def send_failure(engine: ServerEngine | ClientEngine) -> bytes:
    """What the I/O layer does once the app has consumed the messages that
    came before a protocol error: send the close frame the engine owes."""
    failure = engine.failure
    assert failure is not None
    return joined(engine.send_close(failure.code, failure.reason))


# --- any split, with and without deflate -------------------------------------------

Item = tuple[str | bytes, list[int] | None, bytes | None]
message = st.one_of(st.text(max_size=400), st.binary(max_size=3000))
# (message, fragment sizes or None, ping payload sent before it or None)
item = st.tuples(
    message,
    st.none() | st.lists(st.integers(1, 800), min_size=1, max_size=4),
    st.none() | st.binary(max_size=125),
)
deflate_params = st.none() | st.builds(
    DeflateParams,
    server_no_context_takeover=st.booleans(),
    client_no_context_takeover=st.booleans(),
    server_max_window_bits=st.integers(8, 15),
    client_max_window_bits=st.integers(8, 15),
)


def send_all(sender: ServerEngine | ClientEngine, items: list[Item]) -> tuple[bytes, list[Event]]:
    """Encode the items; return the stream and the events the peer must see."""
    out: list[bytes] = []
    expected: list[Event] = []
    for msg, sizes, ping in items:
        if ping is not None:
            out += sender.send_ping(ping)
            expected.append(Ping(ping))
        if sizes is None:
            out += sender.send_text(msg) if isinstance(msg, str) else sender.send_binary(msg)
        else:
            pos = 0
            for size in sizes:
                out += sender.send_fragment(msg[pos : pos + size], fin=False)
                pos += size
            out += sender.send_fragment(msg[pos:], fin=True)
        expected.append(TextMessage(msg) if isinstance(msg, str) else BytesMessage(msg))
    return joined(out), expected


@settings(max_examples=120, deadline=None)
@given(
    items=st.lists(item, max_size=6),
    params=deflate_params,
    cuts=st.lists(st.integers(0, 20000), max_size=10),
    one_byte=st.booleans(),
)
def test_client_to_server_any_split(
    items: list[Item], params: DeflateParams | None, cuts: list[int], one_byte: bool
) -> None:
    client = ClientEngine(deflate=params)
    stream, expected = send_all(client, items)
    if one_byte:
        cuts = list(range(len(stream)))[:3000] + cuts
    assert feed(ServerEngine(deflate=params), stream, cuts) == expected
    assert feed(ServerEngine(deflate=params), stream) == expected


@settings(max_examples=120, deadline=None)
@given(
    items=st.lists(item, max_size=6),
    params=deflate_params,
    cuts=st.lists(st.integers(0, 20000), max_size=10),
)
def test_server_to_client_any_split(
    items: list[Item], params: DeflateParams | None, cuts: list[int]
) -> None:
    stream, expected = send_all(ServerEngine(deflate=params), items)
    assert feed(ClientEngine(deflate=params), stream, cuts) == expected


@pytest.mark.parametrize("bits", range(8, 16))
@pytest.mark.parametrize("nct", [False, True])
def test_deflate_round_trip_every_window_keeps_context_across_messages(
    bits: int, nct: bool
) -> None:
    params = DeflateParams(
        server_no_context_takeover=nct,
        client_no_context_takeover=nct,
        server_max_window_bits=bits,
        client_max_window_bits=bits,
    )
    server, client = ServerEngine(deflate=params), ClientEngine(deflate=params)
    text = "the same sentence repeats, and repeats again. " * 40
    for _ in range(5):
        assert feed(server, joined(client.send_text(text))) == [TextMessage(text)]
        assert feed(client, joined(server.send_binary(text.encode()))) == [
            BytesMessage(text.encode())
        ]
    # A message that does not compress on its own but fits every window:
    # repeated, it refers back to the last one with context takeover only.
    unique = "".join(random.Random(0).choices(string.ascii_letters, k=150))
    second = joined(server.send_text(unique))
    third = joined(server.send_text(unique))
    assert (len(third) == len(second)) if nct else (len(third) < 20 < len(second))


# --- control frames and the close handshake ------------------------------------------


def test_ping_is_answered_with_the_same_payload() -> None:
    server, client = ServerEngine(), ClientEngine()
    assert feed(server, joined(client.send_ping(b"latency"))) == [Ping(b"latency")]
    assert feed(client, joined(server.data_to_send())) == [Pong(b"latency")]
    assert server.data_to_send() == []


def test_control_frames_interleave_with_fragments() -> None:
    server, client = ServerEngine(), ClientEngine()
    stream = joined(
        client.send_fragment("hel", fin=False)
        + client.send_ping(b"1")
        + client.send_fragment("lo", fin=False)
        + client.send_pong(b"2")
        + client.send_fragment("", fin=True)
    )
    assert feed(server, stream) == [Ping(b"1"), Pong(b"2"), TextMessage("hello")]


def test_close_handshake_started_by_client() -> None:
    server, client = ServerEngine(), ClientEngine()
    frames = client.send_close(1001, "going")
    assert client.close_sent == Close(1001, "going")
    assert not client.should_close_transport()
    assert feed(server, joined(frames)) == [CloseReceived(1001, "going")]
    assert server.state is EngineState.CLOSED
    assert (server.close_code, server.close_reason) == (1001, "going")
    assert server.should_close_transport()
    echo = server.data_to_send()
    assert feed(client, joined(echo)) == [CloseReceived(1001, "")]
    assert client.state is EngineState.CLOSED
    assert not client.should_close_transport()  # the server closes TCP first
    assert client.receive_eof() == []
    assert client.should_close_transport()


def test_close_handshake_started_by_server_and_empty_close() -> None:
    server, client = ServerEngine(), ClientEngine()
    close = server.send_close(1005)  # no status code on the wire
    assert close == [b"\x88\x00"]
    assert not server.should_close_transport()
    assert feed(client, joined(close)) == [CloseReceived(1005, "")]
    echo = joined(client.data_to_send())
    assert echo[:2] == b"\x88\x80"  # masked, empty payload: no code echoed for 1005
    assert feed(server, echo) == [CloseReceived(1005, "")]
    assert server.state is EngineState.CLOSED and server.should_close_transport()


def test_data_after_close_sent_is_still_delivered_but_no_pong() -> None:
    server, client = ServerEngine(), ClientEngine()
    server.send_close()
    events = feed(server, joined(client.send_text("late") + client.send_ping(b"p")))
    assert events == [TextMessage("late"), Ping(b"p")]
    assert server.data_to_send() == []


def test_nothing_after_the_peers_close_counts() -> None:
    server, client = ServerEngine(), ClientEngine()
    stream = joined([*client.send_close(), masked(0x81, b"after")])
    assert feed(server, stream) == [CloseReceived(1000, "")]
    assert feed(server, masked(0x81, b"later")) == []


def test_sending_after_close_is_invalid_state() -> None:
    server = ServerEngine()
    server.send_close(1000, "bye")
    assert server.close_sent is not None and server.close_sent.reason == "bye"
    sends: list[Callable[[], object]] = [
        lambda: server.send_text("x"),
        lambda: server.send_binary(b"x"),
        lambda: server.send_fragment("x", fin=True),
        lambda: server.send_ping(),
        lambda: server.send_pong(),
        lambda: server.send_close(),
    ]
    for send in sends:
        with pytest.raises(InvalidState):
            send()


def test_send_close_validates_code_and_reason() -> None:
    server = ServerEngine()
    for code in (999, 1004, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            server.send_close(code)
    with pytest.raises(ValueError):
        server.send_close(1000, "x" * 124)
    with pytest.raises(ValueError):
        server.send_ping(b"x" * 126)
    assert server.state is EngineState.OPEN
    assert server.send_close(4999, "x" * 123)[0][:4] == b"\x88\x7d\x13\x87"


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_received_valid_close_code_is_echoed(code: int) -> None:
    server = ServerEngine()
    assert feed(server, masked(0x88, code.to_bytes(2, "big") + b"ok")) == [
        CloseReceived(code, "ok")
    ]
    assert server.close_sent is not None and server.close_sent.code == code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000])
def test_received_invalid_close_code_fails_with_1002(code: int) -> None:
    server = ServerEngine()
    events = feed(server, masked(0x88, code.to_bytes(2, "big")))
    assert [type(e) for e in events] == [ConnectionFailed] and failure_code(events) == 1002
    assert server.data_to_send() == []  # the close is owed, not sent by itself
    close = send_failure(server)
    assert close[0] == 0x88 and close[2:4] == b"\x03\xea"  # close 1002
    assert server.failure is None
    # the peer's close did arrive, so the handshake is over
    assert server.state is EngineState.CLOSED and server.should_close_transport()
    assert server.close_code == 1006


def test_close_with_one_byte_or_bad_utf8_reason() -> None:
    server = ServerEngine()
    assert feed(server, masked(0x88, b"\x03"))[0] == ConnectionFailed(
        1002, "close frame with a 1-byte payload"
    )
    server = ServerEngine()
    assert failure_code(feed(server, masked(0x88, b"\x03\xe8\xce\xba\xff"))) == 1007


# --- failures -------------------------------------------------------------------


def test_events_before_the_error_come_first_in_order() -> None:
    server, client = ServerEngine(), ClientEngine()
    stream = joined(
        client.send_text("one") + client.send_ping(b"p") + client.send_binary(b"two")
    ) + masked(0x83, b"")
    events = feed(server, stream)
    assert events[:3] == [TextMessage("one"), Ping(b"p"), BytesMessage(b"two")]
    assert isinstance(events[3], ConnectionFailed) and events[3].code == 1002
    assert joined(server.data_to_send()) == b"\x8a\x01p"  # the pong queued before the failure
    # Replies to the messages before the error may still go out ...
    assert server.state is EngineState.OPEN and not server.should_close_transport()
    assert joined(server.send_text("one")) == b"\x81\x03one"
    # ... then the close frame the failure calls for.
    close = send_failure(server)
    assert close[0] == 0x88 and close[2:4] == b"\x03\xea"
    assert state_of(server) is EngineState.CLOSING
    # a bad header leaves the stream unparseable: nothing more to learn from it
    assert server.should_close_transport()
    assert feed(server, joined(client.send_close())) == []


def test_after_a_data_error_data_is_dropped_until_the_peers_close() -> None:
    server, client = ServerEngine(), ClientEngine()
    events = feed(server, masked(0x81, b"ok\xff"))
    assert events == [ConnectionFailed(1007, "invalid UTF-8 in text message")]
    # exactly one close frame: the failure's 1007
    assert send_failure(server) == b"\x88\x1f\x03\xefinvalid UTF-8 in text message"
    assert not server.should_close_transport()  # waits for the peer's close
    assert feed(server, joined(client.send_text("ignored") + client.send_ping(b"x"))) == []
    assert feed(server, joined(client.send_close())) == []
    assert server.state is EngineState.CLOSED and server.should_close_transport()
    assert server.close_code == 1000
    assert server.data_to_send() == []


def test_utf8_fails_fast_inside_fragments() -> None:
    server = ServerEngine()
    stream = masked(0x01, "κόσμε".encode()) + masked(0x00, b"\xce\xba\xed\xa0\x80abc")
    # the message is not finished: the error still comes at the fragment holding it
    assert feed(server, stream) == [ConnectionFailed(1007, "invalid UTF-8 in text message")]


def test_utf8_fails_fast_inside_one_partially_received_frame() -> None:
    server = ServerEngine()
    frame = masked(0x81, b"valid start " + b"\xf5" + b"x" * 100)
    assert failure_code(feed(server, frame[: 6 + 20])) == 1007


def test_code_point_split_across_fragments_is_fine() -> None:
    server = ServerEngine()
    euro = "€".encode()
    stream = masked(0x01, b"a" + euro[:1]) + masked(0x00, euro[1:2]) + masked(0x80, euro[2:])
    assert feed(server, stream) == [TextMessage("a€")]
    assert (
        failure_code(feed(ServerEngine(), masked(0x01, b"a" + euro[:2]) + masked(0x80, b"")))
        == 1007
    )


def test_size_limit_across_fragments() -> None:
    server = ServerEngine(max_size=10)
    assert feed(server, masked(0x02, b"x" * 5) + masked(0x80, b"y" * 5)) == [
        BytesMessage(b"x" * 5 + b"y" * 5)
    ]
    events = feed(server, masked(0x02, b"x" * 5) + masked(0x80, b"y" * 6))
    assert [type(e) for e in events] == [ConnectionFailed] and failure_code(events) == 1009
    assert feed(ServerEngine(max_size=None), masked(0x82, b"z" * 300)) == [BytesMessage(b"z" * 300)]


def test_zip_bomb_is_refused_without_inflating_it() -> None:
    params = DeflateParams()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\x00" * 10_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]
    assert len(bomb) < 20_000
    stream = (
        struct.pack(">BBH", 0xC2, 0x80 | 126, len(bomb))
        + MASK
        + bytes(b ^ MASK[i % 4] for i, b in enumerate(bomb))
    )
    server = ServerEngine(max_size=2**20, deflate=params)
    tracemalloc.start()
    try:
        events = server.receive_data(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [type(e) for e in events] == [ConnectionFailed] and failure_code(events) == 1009
    assert peak < 4 * 2**20  # about the limit, not the 10 MB it would inflate to


def test_compressed_message_exactly_at_the_limit() -> None:
    params = DeflateParams()
    client = ClientEngine(deflate=params)
    data = b"a" * 1000
    assert feed(ServerEngine(max_size=1000, deflate=params), joined(client.send_binary(data))) == [
        BytesMessage(data)
    ]
    client = ClientEngine(deflate=params)
    events = feed(ServerEngine(max_size=999, deflate=params), joined(client.send_binary(data)))
    assert failure_code(events) == 1009
    client = ClientEngine(deflate=params)
    frags = joined(
        client.send_fragment(b"a" * 600, fin=False) + client.send_fragment(b"a" * 600, fin=True)
    )
    events = feed(ServerEngine(max_size=1000, deflate=params), frags)
    assert failure_code(events) == 1009


def test_invalid_compressed_data_is_1007() -> None:
    server = ServerEngine(deflate=DeflateParams())
    events = feed(server, masked(0xC2, b"\xff\xff\xff\xff"))
    assert failure_code(events) == 1007


def test_rsv1_without_deflate_and_unmasked_frames() -> None:
    assert failure_code(feed(ServerEngine(), masked(0xC1, b"x"))) == 1002
    assert failure_code(feed(ServerEngine(), b"\x81\x01x")) == 1002
    assert failure_code(feed(ClientEngine(), masked(0x81, b"x"))) == 1002


def test_eof_without_close_is_1006_and_nothing_is_sent() -> None:
    server = ServerEngine()
    assert server.receive_eof() == [
        ConnectionFailed(1006, "connection closed without a closing handshake")
    ]
    assert server.data_to_send() == []
    assert server.state is EngineState.CLOSED and server.close_code == 1006
    assert server.should_close_transport()
    assert server.receive_eof() == []
    assert server.receive_data(b"\x81\x80") == []


def test_eof_after_failure_adds_no_second_failure() -> None:
    server = ServerEngine()
    feed(server, masked(0x8F, b""))
    assert server.receive_eof() == []


# --- sending ---------------------------------------------------------------------


def test_fragment_types_must_match_and_messages_do_not_interleave() -> None:
    client = ClientEngine()
    client.send_fragment(b"a", fin=False)
    with pytest.raises(TypeError):
        client.send_fragment("b", fin=True)
    with pytest.raises(InvalidState):
        client.send_text("interleaved")
    client.send_fragment(memoryview(b"b"), fin=True)
    client.send_text("now fine")


def test_fragments_use_continuation_opcodes_and_rsv1_on_first_only() -> None:
    server = ServerEngine(deflate=DeflateParams())
    first = server.send_fragment("abc", fin=False)[0]
    second = server.send_fragment("def", fin=True)[0]
    assert first[0] == 0x40 | TEXT and second[0] == 0x80 | CONT
    plain = ServerEngine()
    assert plain.send_fragment(b"x", fin=False)[0][0] == BINARY


def test_client_masks_with_a_fresh_key_and_big_payloads_are_separate() -> None:
    client = ClientEngine()
    a, b = client.send_binary(b"\x00" * 10), client.send_binary(b"\x00" * 10)
    assert a[0][1] & 0x80 and a != b
    big = ServerEngine().send_binary(bytearray(5000))
    assert len(big) == 2 and isinstance(big[1], bytes) and len(big[1]) == 5000


def test_encode_server_frame_is_readable_by_any_client() -> None:
    frame = joined(encode_server_frame(TEXT, b"hi"))
    assert feed(ClientEngine(), frame) == [TextMessage("hi")]
    assert feed(ClientEngine(deflate=DeflateParams()), frame) == [TextMessage("hi")]


def test_empty_messages_are_messages() -> None:
    for params in (None, DeflateParams()):
        server, client = ServerEngine(deflate=params), ClientEngine(deflate=params)
        stream = joined(client.send_text("") + client.send_binary(b""))
        assert feed(server, stream) == [TextMessage(""), BytesMessage(b"")]


# --- interop with wsproto (test-only peer) ---------------------------------------------


def test_our_client_against_wsproto_server() -> None:
    peer = Connection(ConnectionType.SERVER)
    client = ClientEngine()
    peer.receive_data(
        joined(
            client.send_text("hello")
            + client.send_fragment(b"bi", fin=False)
            + client.send_fragment(b"nary", fin=True)
            + client.send_ping(b"p")
            + client.send_binary(b"z" * 70000)
        )
    )
    got = list(peer.events())
    texts = [e for e in got if isinstance(e, wse.TextMessage)]
    assert [t.data for t in texts] == ["hello"]
    binary = b"".join(bytes(e.data) for e in got if isinstance(e, wse.BytesMessage))
    assert binary == b"binary" + b"z" * 70000
    assert any(isinstance(e, wse.Ping) and e.payload == b"p" for e in got)
    reply = peer.send(wse.Message(data="é" * 10)) + peer.send(wse.Pong(payload=b"p"))
    assert feed(client, reply + joined([])) == [TextMessage("é" * 10), Pong(b"p")]
    peer.receive_data(joined(client.send_close(1001, "bye")))
    assert [(e.code, e.reason) for e in peer.events() if isinstance(e, wse.CloseConnection)] == [
        (1001, "bye")
    ]


def test_wsproto_client_against_our_server() -> None:
    peer = Connection(ConnectionType.CLIENT)
    server = ServerEngine()
    stream = (
        peer.send(wse.Message(data="text"))
        + peer.send(wse.Message(data=b"bytes" * 1000))
        + peer.send(wse.Ping(payload=b"ping"))
        + peer.send(wse.CloseConnection(code=1000, reason="done"))
    )
    assert feed(server, stream, cuts=list(range(0, len(stream), 7))) == [
        TextMessage("text"),
        BytesMessage(b"bytes" * 1000),
        Ping(b"ping"),
        CloseReceived(1000, "done"),
    ]
    peer.receive_data(joined(server.data_to_send()))
    got = list(peer.events())
    assert isinstance(got[0], wse.Pong) and got[0].payload == b"ping"
    assert isinstance(got[1], wse.CloseConnection) and got[1].code == 1000


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1000, 1024, 1025, 65535, 65536, 70000])
@pytest.mark.parametrize("deflate", [False, True])
def test_server_frames_of_every_length_form_match_the_frame_encoder(
    size: int, deflate: bool
) -> None:
    """The engine builds the common frames inline; the bytes must be the ones
    encode_frame gives (minimal length encoding, FIN, RSV1 iff compressed)."""
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    engine = ServerEngine(deflate=DeflateParams() if deflate else None)
    sent = b"".join(engine.send_binary(payload))
    # the backend in use: zlib-ng's bytes differ from zlib's
    params = DeflateParams()
    wire = (
        backend_zlib.compressobj(
            params.level, backend_zlib.DEFLATED, -params.server_max_window_bits, params.mem_level
        )
        if deflate
        else None
    )
    if wire is not None:
        body = (wire.compress(payload) + wire.flush(backend_zlib.Z_SYNC_FLUSH))[:-4]
    else:
        body = payload
    assert sent == b"".join(encode_frame(BINARY, body, rsv1=deflate))


# Frames a client may send, valid or not: whatever the mix, a read that gives
# only data messages must leave the engine with nothing to send and its
# closing state where it was (the connection layer then skips both checks).
_READ_FRAMES = [
    masked(0x81, b"text"),
    masked(0x82, b"\x00\xffbinary"),
    masked(0x81, b""),
    masked(0x89, b"ping"),
    masked(0x8A, b"pong"),
    masked(0x88, struct.pack(">H", 1000) + b"bye"),
    masked(0x88, struct.pack(">H", 999)),  # invalid close code
    masked(0x81, b"\xff\xfe"),  # invalid UTF-8
    masked(0x83, b"reserved opcode"),
    masked(0x01, b"frag") + masked(0x80, b"ment"),  # a fragmented text message
    masked(0x80, b"stray continuation"),
    masked(0xC1, b"rsv1 without deflate"),
    bytes((0x81, 0x04)) + b"open",  # unmasked from a client
]


@settings(max_examples=300, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(_READ_FRAMES) - 1), max_size=12),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_a_read_of_only_data_messages_queues_nothing_and_moves_no_state(
    picks: list[int], cuts: list[int]
) -> None:
    server = ServerEngine()
    stream = b"".join(_READ_FRAMES[i] for i in picks)
    prev = 0
    for cut in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        before = (server.state, server.should_close_transport())
        events = server.receive_data(stream[prev:cut])
        prev = cut
        if events and all(isinstance(e, (TextMessage, BytesMessage)) for e in events):
            assert server.data_to_send() == []
            assert (server.state, server.should_close_transport()) == before
        else:
            server.data_to_send()
