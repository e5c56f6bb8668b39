"""WebSocketConnection against a fake transport, with the websockets library's
sans-I/O protocol as the client peer that frames and parses the bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from asgiws.connection import WebSocketConnection
from asgiws.connection.core import EVENTS_PER_TURN
from asgiws.connection.writer import Burst
from asgiws.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from asgiws.options import connection_options_from_keywords
from asgiws.websocket.connection import ServerEngine


class FakeTransport(asyncio.Transport):
    """Records writes and flow-control calls; close() reports connection_lost
    on the next loop iteration, as asyncio's transports do."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.aborted = False
        self.write_limit: int | None = None
        self.buffered = 0  # bytes a test says the kernel has not taken yet
        self.finishing_tls = False  # a test's TLS shutdown that never ends

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_limit = high

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "write after close"
        self.written += data

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            # Like a real transport: close() ends the connection only once
            # what is buffered has gone out (or a TLS shutdown has finished).
            if not self.buffered and not self.finishing_tls:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.buffered = 0
        self.finishing_tls = False
        self.closing = False
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data


class Peer:
    """The client side: frames what it sends, parses what the server wrote."""

    def __init__(self, conn: WebSocketConnection, transport: FakeTransport) -> None:
        self.conn = conn
        self.transport = transport
        self.protocol = Protocol(Side.CLIENT, max_size=None)

    def flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        if data:
            self.conn.data_received(data)

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        self.flush()

    def frames(self) -> list[Frame]:
        """Frames the server wrote since the last call (auto-replies are queued
        in the peer but only sent by flush())."""
        self.protocol.receive_data(self.transport.take())
        return [e for e in self.protocol.events_received() if isinstance(e, Frame)]


def make_connection(
    *, engine: bool = True, registry: set[Any] | None = None, **options: Any
) -> tuple[WebSocketConnection, FakeTransport, Peer]:
    options.setdefault("ws_ping_interval", None)
    conn_options = connection_options_from_keywords(**options)
    conn = WebSocketConnection(
        conn_options,
        engine=ServerEngine(max_size=conn_options.max_size) if engine else None,
        registry=registry,
    )
    transport = FakeTransport(conn)
    conn.connection_made(transport)
    return conn, transport, Peer(conn, transport)


async def test_recv_delivers_text_and_binary_including_empty_messages() -> None:
    conn, _, peer = make_connection()
    peer.send_text("hello")
    peer.send_text("")
    peer.send_binary(b"")
    peer.send_binary(b"\x00\xff")
    assert [await conn.recv() for _ in range(4)] == ["hello", "", b"", b"\x00\xff"]


async def test_send_accepts_str_and_every_bytes_like_type() -> None:
    conn, _, peer = make_connection()
    await conn.send("héllo")
    await conn.send(b"raw")
    await conn.send(bytearray(b"array"))
    await conn.send(memoryview(b"view"))
    frames = peer.frames()
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.TEXT, "héllo".encode()),
        (Opcode.BINARY, b"raw"),
        (Opcode.BINARY, b"array"),
        (Opcode.BINARY, b"view"),
    ]


async def test_sending_an_iterable_sends_one_fragmented_message() -> None:
    conn, _, peer = make_connection()
    await conn.send(["a", "b", "c"])
    frames = peer.frames()
    assert [(f.opcode, f.data, f.fin) for f in frames] == [
        (Opcode.TEXT, b"a", False),
        (Opcode.CONT, b"b", False),
        (Opcode.CONT, b"c", False),
        (Opcode.CONT, b"", True),
    ]


async def test_sending_an_async_iterable_sends_one_fragmented_message() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"
        yield b"y"

    conn, _, peer = make_connection()
    await conn.send(chunks())
    frames = peer.frames()
    assert [(f.opcode, f.data, f.fin) for f in frames] == [
        (Opcode.BINARY, b"x", False),
        (Opcode.CONT, b"y", False),
        (Opcode.CONT, b"", True),
    ]


async def test_a_wrong_first_fragment_type_sends_nothing() -> None:
    conn, transport, _ = make_connection()
    with pytest.raises(TypeError):
        await conn.send([1, 2])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        await conn.send({"type": "websocket.send"})
    assert transport.written == b""
    assert conn.open


async def test_mixing_str_and_bytes_mid_message_fails_the_connection_with_1011() -> None:
    def chunks() -> Iterator[Any]:
        yield "text"
        yield b"bytes"

    conn, transport, _ = make_connection()
    with pytest.raises(TypeError):
        await conn.send(chunks())
    # (websockets' parser refuses a close frame inside a fragmented message,
    # which RFC 6455 5.4 allows, so the two short frames are read by hand.)
    data = transport.take()
    assert data[:6] == b"\x01\x04text"  # TEXT, fin=0
    assert data[6] == 0x88 and data[8:10] == (1011).to_bytes(2, "big")
    assert not conn.open


async def test_a_cancelled_recv_does_not_lose_the_message() -> None:
    conn, _, peer = make_connection()
    waiting = asyncio.create_task(conn.recv())
    await asyncio.sleep(0)  # let recv() start waiting
    peer.send_text("kept")  # wakes the waiter...
    waiting.cancel()  # ...but the task is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await conn.recv() == "kept"


async def test_reading_pauses_at_max_queue_and_resumes_when_the_app_consumes() -> None:
    conn, transport, peer = make_connection(ws_max_queue=4)
    for i in range(3):
        peer.send_text(str(i))
    assert transport.reading
    peer.send_text("3")
    assert not transport.reading and conn.reading_paused
    # Nothing is dropped: a frame that was already read is still queued.
    peer.send_text("4")
    assert await conn.recv() == "0"
    assert not transport.reading  # resumes at a quarter of max_queue, not at once
    assert [await conn.recv() for _ in range(3)] == ["1", "2", "3"]
    assert transport.reading
    assert await conn.recv() == "4"


async def test_send_waits_while_the_transport_is_paused() -> None:
    conn, transport, peer = make_connection(ws_write_limit=1234)
    assert transport.write_limit == 1234
    conn.pause_writing()
    sending = asyncio.create_task(conn.send("slow"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # The frame is written at once (no queue of our own); send() waits for the drain.
    assert [f.data for f in peer.frames()] == [b"slow"]
    assert not sending.done()
    conn.resume_writing()
    await asyncio.wait_for(sending, 1)


async def test_a_paused_send_raises_connection_closed_when_the_connection_is_lost() -> None:
    conn, transport, _ = make_connection()
    conn.pause_writing()
    sending = asyncio.create_task(conn.send("lost"))
    await asyncio.sleep(0)
    transport.abort()
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(sending, 1)


async def test_ping_future_resolves_with_latency_and_acknowledges_earlier_pings() -> None:
    conn, _, peer = make_connection()
    first = await conn.ping()
    second = await conn.ping(b"two")
    frames = peer.frames()
    assert [f.opcode for f in frames] == [Opcode.PING, Opcode.PING]
    assert frames[1].data == b"two"
    # The peer answers only the second ping (its automatic pongs to both
    # are dropped); the first counts as answered too.
    peer.protocol.data_to_send()
    peer.protocol.send_pong(b"two")
    peer.flush()
    assert first.done() and second.done()
    assert second.result() >= 0.0
    assert conn.latency == second.result()


async def test_a_pong_acknowledges_earlier_pings_so_they_do_not_pile_up() -> None:
    conn, _, peer = make_connection()
    first = await conn.ping(b"one")
    await conn.ping(b"two")
    peer.frames()
    peer.protocol.data_to_send()  # the peer never answers "one"
    peer.protocol.send_pong(b"two")
    peer.flush()
    assert first.done()
    # "one" is no longer waiting for its pong: the same payload may be sent again.
    again = await conn.ping(b"one")
    assert not again.done()


async def test_pong_sends_an_unsolicited_pong_frame() -> None:
    conn, _, peer = make_connection()
    await conn.pong(b"heartbeat")
    await conn.pong("text")
    assert [(f.opcode, f.data) for f in peer.frames()] == [
        (Opcode.PONG, b"heartbeat"),
        (Opcode.PONG, b"text"),
    ]


async def test_peer_ping_is_answered_with_a_pong() -> None:
    _, _, peer = make_connection()
    peer.protocol.send_ping(b"hi")
    peer.flush()
    frames = peer.frames()
    assert [(f.opcode, f.data) for f in frames] == [(Opcode.PONG, b"hi")]


async def test_duplicate_ping_payload_is_refused() -> None:
    conn, _, _ = make_connection()
    await conn.ping("same")
    with pytest.raises(RuntimeError):
        await conn.ping("same")


async def test_peer_close_is_echoed_then_the_server_closes_tcp_and_recv_raises_ok() -> None:
    conn, transport, peer = make_connection()
    peer.send_text("last")
    peer.protocol.send_close(1000, "bye")
    peer.flush()
    frames = peer.frames()
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert transport.closing  # RFC 6455 7.1.1: the server closes TCP first
    assert not conn.open
    assert await conn.recv() == "last"  # queued messages are still delivered
    with pytest.raises(ConnectionClosedOK) as info:
        await conn.recv()
    assert (info.value.code, info.value.reason) == (1000, "bye")
    assert str(info.value) == "received 1000 (OK) bye; then sent 1000 (OK)"
    # It survives pickling (a process pool, a multiprocessing queue), as
    # websockets' does: the constructor's arguments are its `args`.
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ConnectionClosedOK and str(copy) == str(info.value)
    assert (copy.rcvd, copy.sent, copy.rcvd_then_sent) == (
        info.value.rcvd,
        info.value.sent,
        True,
    )
    await asyncio.wait_for(conn.wait_closed(), 1)
    assert conn.closed and conn.close_code == 1000 and conn.close_reason == "bye"


def closing_at_once(conn: WebSocketConnection, at_once: bool) -> None:
    """The server's `closes_at_once` (its transports are plain sockets)."""
    conn.options = dataclasses.replace(conn.options, closes_at_once=at_once)


@pytest.mark.parametrize("at_once", [True, False])
async def test_the_server_closes_at_once_after_the_peers_close(at_once: bool) -> None:
    conn, transport, peer = make_connection(ws_close_timeout=5)
    closing_at_once(conn, at_once)
    peer.protocol.send_close(1000, "bye")
    peer.flush()
    assert transport.closing
    await asyncio.wait_for(conn.wait_closed(), 1)
    assert conn.close_code == 1000 and not transport.aborted


@pytest.mark.parametrize(
    ("at_once", "stuck"),
    [(True, "buffered"), (False, "buffered"), (False, "finishing_tls")],
)
async def test_a_close_that_cannot_finish_is_dropped_after_close_timeout(
    at_once: bool, stuck: str
) -> None:
    # A peer that stopped reading (our close frame still buffered), or a TLS
    # shutdown the peer never answers: close() alone would wait for ever.
    conn, transport, peer = make_connection(ws_close_timeout=0.05)
    closing_at_once(conn, at_once)
    setattr(transport, stuck, 512 if stuck == "buffered" else True)
    peer.protocol.send_close(1000, "bye")
    peer.flush()
    assert transport.closing
    await asyncio.wait_for(conn.wait_closed(), 2)
    assert transport.aborted


async def test_an_error_close_code_raises_connection_closed_error() -> None:
    conn, _, peer = make_connection()
    peer.protocol.send_close(1011, "oops")
    peer.flush()
    with pytest.raises(ConnectionClosedError) as info:
        await conn.recv()
    assert info.value.code == 1011
    with pytest.raises(ConnectionClosed):
        await conn.send("too late")


async def test_close_completes_the_closing_handshake() -> None:
    conn, transport, peer = make_connection()
    closing = asyncio.create_task(conn.close(1001, "going"))
    await asyncio.sleep(0)
    frames = peer.frames()
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.CLOSE, (1001).to_bytes(2, "big") + b"going")
    ]
    peer.flush()  # the peer's automatic close echo
    await asyncio.wait_for(closing, 1)
    assert transport.closing and not transport.aborted
    assert conn.close_code == 1001
    with pytest.raises(ConnectionClosedOK):
        await conn.recv()


async def test_close_is_bounded_by_close_timeout_when_the_peer_never_answers() -> None:
    conn, transport, _ = make_connection(ws_close_timeout=0.05)
    await asyncio.wait_for(conn.close(), 2)
    assert transport.aborted
    assert conn.closed and conn.close_code == 1006
    with pytest.raises(ConnectionClosedError) as info:
        await conn.recv()
    assert info.value.sent is not None and info.value.sent.code == 1000
    assert info.value.rcvd is None


async def test_connection_lost_wakes_recv_and_fails_pending_pings() -> None:
    conn, transport, _ = make_connection()
    waiting = asyncio.create_task(conn.recv())
    pong = await conn.ping()
    await asyncio.sleep(0)
    transport.abort()
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(waiting, 1)
    assert info.value.code == 1006
    assert isinstance(pong.exception(), ConnectionClosed)


async def test_keepalive_closes_with_1011_when_no_pong_arrives() -> None:
    conn, _, peer = make_connection(ws_ping_interval=0.01, ws_ping_timeout=0.02, ws_close_timeout=5)
    await asyncio.wait_for(conn.wait_closed(), 2)
    frames = peer.frames()
    assert frames[0].opcode is Opcode.PING
    assert frames[-1].opcode is Opcode.CLOSE
    assert frames[-1].data == (1011).to_bytes(2, "big") + b"keepalive ping timeout"


async def test_keepalive_keeps_an_answering_peer_open_and_measures_latency() -> None:
    conn, transport, peer = make_connection(ws_ping_interval=0.01, ws_ping_timeout=0.5)
    for _ in range(3):
        # Wait for each keepalive ping (bounded), then answer it.
        for _ in range(200):
            frames = peer.frames()
            if frames:
                break
            await asyncio.sleep(0.005)
        assert [f.opcode for f in frames] == [Opcode.PING]
        peer.flush()  # the peer protocol answered the ping automatically
    assert conn.open and not transport.closing
    assert conn.latency > 0.0


async def test_bytes_before_the_engine_is_attached_are_kept() -> None:
    conn, _, peer = make_connection(engine=False)
    peer.protocol.send_text(b"early")
    conn.data_received(b"".join(peer.protocol.data_to_send()))
    assert not conn.open
    conn.attach_engine(ServerEngine(max_size=2**20))
    assert conn.open
    assert await conn.recv() == "early"


async def test_protocol_error_fails_the_connection_with_its_code() -> None:
    conn, transport, peer = make_connection()
    conn.data_received(b"\x81\x05hello")  # unmasked frame from a client: 1002
    frames = peer.frames()
    assert frames[-1].opcode is Opcode.CLOSE
    assert frames[-1].data[:2] == (1002).to_bytes(2, "big")
    assert not conn.open
    peer.protocol.receive_data(b"")  # nothing else
    transport.abort()
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(conn.recv(), 1)
    assert info.value.sent is not None and info.value.sent.code == 1002


async def test_replies_to_messages_before_a_protocol_error_precede_the_close() -> None:
    # Autobahn 3.2 / 4.1.3: a valid message, then a bad frame. The echo of the
    # valid message must reach the peer before the close frame, so the close
    # waits until the app has read up to the error.
    conn, transport, peer = make_connection()
    masked_hello = b"\x81\x85\x00\x00\x00\x00hello"
    conn.data_received(masked_hello + b"\x83\x80\x00\x00\x00\x00")  # then opcode 3: 1002
    assert peer.frames() == []  # nothing yet: the app has not read "hello"
    assert await conn.recv() == "hello"
    await conn.send("hello")
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(conn.recv(), 1)
    frames = peer.frames()
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CLOSE]
    assert frames[0].data == b"hello"
    assert frames[1].data[:2] == (1002).to_bytes(2, "big")
    assert info.value.sent is not None and info.value.sent.code == 1002
    transport.abort()


async def test_a_protocol_error_behind_unread_messages_closes_after_close_timeout() -> None:
    conn, transport, peer = make_connection(ws_close_timeout=0.05)
    conn.data_received(b"\x81\x82\x00\x00\x00\x00hi" + b"\x83\x80\x00\x00\x00\x00")
    # The app never reads: the close frame still goes out after the close
    # timeout, then TCP closes (a bad frame header leaves nothing to parse).
    await asyncio.wait_for(conn.wait_closed(), 2)
    frames = peer.frames()
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert transport.closing


async def test_shutdown_closes_with_1012_and_leaves_the_registry() -> None:
    registry: set[Any] = set()
    conn, _, peer = make_connection(registry=registry)
    assert conn in registry
    conn.shutdown()
    frames = peer.frames()
    assert frames[-1].data[:2] == (1012).to_bytes(2, "big")
    peer.flush()
    await asyncio.wait_for(conn.wait_closed(), 1)
    assert conn not in registry


async def test_async_iteration_raises_on_an_error_close() -> None:
    conn, _, peer = make_connection()
    peer.send_text("a")
    peer.protocol.send_close(1011, "server bug")
    peer.flush()
    received = []
    with pytest.raises(ConnectionClosedError) as info:
        async for message in conn:
            received.append(message)
    assert received == ["a"] and info.value.code == 1011


async def test_a_peer_violation_is_the_cause_of_connection_closed_error() -> None:
    from asgiws.exceptions import PayloadTooBig, ProtocolError

    conn, _, peer = make_connection(max_size=10)
    peer.send_text("x" * 11)
    with pytest.raises(ConnectionClosedError) as info:
        await conn.recv()
    assert isinstance(info.value.__cause__, PayloadTooBig)
    conn, _, _ = make_connection()
    conn.data_received(b"\x83\x80" + b"\x00" * 4)  # opcode 3 is reserved
    with pytest.raises(ConnectionClosedError) as info:
        await conn.recv()
    assert isinstance(info.value.__cause__, ProtocolError)


async def test_read_limit_bounds_unparsed_bytes_while_the_app_is_behind() -> None:
    conn, transport, peer = make_connection(max_queue=2, read_limit=1024)
    for i in range(100):  # 100 messages of 100 bytes arrive in one read
        peer.protocol.send_text(f"{i:03d}".encode() * 33 + b"!")
    conn.data_received(b"".join(peer.protocol.data_to_send()))
    # Parsing stopped once max_queue messages waited: only what fits in one
    # read_limit slice was parsed, the rest is held unparsed.
    assert not transport.reading
    assert len(conn._inbox.messages) <= 2 + 1024 // 100 + 1
    received = [await asyncio.wait_for(conn.recv(), 1) for _ in range(100)]
    assert received == [f"{i:03d}" * 33 + "!" for i in range(100)]
    assert transport.reading


async def test_close_timeout_none_means_the_default_not_zero() -> None:
    assert connection_options_from_keywords(close_timeout=None).close_timeout == 10.0
    conn, transport, _ = make_connection(close_timeout=None)
    conn.start_close(1000, "")
    for _ in range(5):
        await asyncio.sleep(0)
    assert not transport.aborted  # still waiting for the peer's close frame


async def test_the_connection_logger_adds_the_connection_to_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="asgiws.websocket")
    conn, _, _ = make_connection()
    conn.logger.info("plain", extra=None)
    conn.logger.info("with extra", extra={"user": "ann"})
    plain, extra = caplog.records[-2:]
    assert plain.websocket is conn and extra.websocket is conn  # type: ignore[attr-defined]
    assert extra.user == "ann"  # type: ignore[attr-defined]


async def test_async_iteration_ends_on_a_normal_close() -> None:
    conn, _, peer = make_connection()
    peer.send_text("a")
    peer.send_binary(b"b")
    peer.protocol.send_close(1000)
    peer.flush()
    assert [m async for m in conn] == ["a", b"b"]


async def test_frames_are_logged_at_debug_with_truncated_payloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asgiws.websocket")
    conn, _, _ = make_connection()
    await conn.send("hello")
    await conn.send("x" * 1000)
    messages = [r.getMessage() for r in caplog.records]
    assert "> TEXT 'hello' [5 bytes]" in messages
    long_line = next(m for m in messages if m.startswith("> TEXT 'xxx"))
    assert long_line.endswith("[1000 bytes]") and len(long_line) < 120


async def test_attributes() -> None:
    conn, _, _ = make_connection()
    assert conn.remote_address == ("127.0.0.1", 50000)
    assert conn.local_address == ("127.0.0.1", 8000)
    assert conn.open and not conn.closed
    assert conn.close_code is None and conn.close_reason is None
    other, _, _ = make_connection()
    assert conn.id != other.id


async def test_a_send_waits_for_a_fragmented_message_in_progress() -> None:
    gate = asyncio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "frag1-"
        await gate.wait()
        yield "frag2"

    conn, _, peer = make_connection()
    fragmented = asyncio.create_task(conn.send(chunks()))
    await asyncio.sleep(0)
    other = asyncio.create_task(conn.send("other"))
    await asyncio.sleep(0)
    assert not other.done()
    gate.set()
    await asyncio.wait_for(asyncio.gather(fragmented, other), 1)
    frames = peer.frames()
    assert [(f.opcode, f.data, f.fin) for f in frames] == [
        (Opcode.TEXT, b"frag1-", False),
        (Opcode.CONT, b"frag2", False),
        (Opcode.CONT, b"", True),
        (Opcode.TEXT, b"other", True),
    ]


async def test_a_ping_payload_over_125_bytes_is_refused_without_side_effects() -> None:
    conn, transport, peer = make_connection()
    with pytest.raises(ValueError):
        await conn.ping(b"x" * 126)
    assert transport.written == b""
    waiter = await conn.ping(b"x" * 125)
    peer.frames()
    peer.flush()  # the automatic pong
    assert waiter.done()


# --- replies to a burst are coalesced into one write ---------------------------------


class CountingTransport(FakeTransport):
    """Counts write()/writelines() calls: each is one system call on a real socket."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__(protocol)
        self.calls = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls += 1
        super().write(data)

    def writelines(self, chunks: Any) -> None:
        self.calls += 1
        for chunk in chunks:
            super().write(chunk)


def make_counting_connection() -> tuple[WebSocketConnection, CountingTransport, Peer]:
    conn = WebSocketConnection(
        connection_options_from_keywords(ping_interval=None), engine=ServerEngine()
    )
    transport = CountingTransport(conn)
    conn.connection_made(transport)
    return conn, transport, Peer(conn, transport)


def send_burst(peer: Peer, texts: list[str]) -> None:
    """The peer's messages arrive in one read, as a pipelining client's do."""
    for text in texts:
        peer.protocol.send_text(text.encode())
    peer.flush()


async def test_replies_to_a_burst_go_out_in_one_write_as_the_burst_is_answered() -> None:
    conn, transport, peer = make_counting_connection()
    send_burst(peer, ["a", "b", "c"])
    for _ in range(3):
        await conn.send((await conn.recv()).upper())
    # Written with the last reply, without waiting for the loop.
    assert transport.calls == 1
    assert [f.data for f in peer.frames()] == [b"A", b"B", b"C"]


async def test_held_replies_are_written_when_recv_waits_or_on_the_next_iteration() -> None:
    conn, transport, peer = make_counting_connection()
    send_burst(peer, ["a", "b"])
    await conn.send(await conn.recv())  # "b" is still queued: the reply is held
    assert transport.calls == 0
    await asyncio.sleep(0)  # the app went to do something else: out anyway
    assert [f.data for f in peer.frames()] == [b"a"]

    conn, transport, peer = make_counting_connection()
    send_burst(peer, ["a", "b"])
    await conn.send(await conn.recv())
    assert await conn.recv() == "b"  # no reply to it; the next recv() will wait
    receiving = asyncio.create_task(conn.recv())
    await asyncio.sleep(0)
    assert [f.data for f in peer.frames()] == [b"a"]
    receiving.cancel()


async def test_held_replies_precede_the_close_frame() -> None:
    conn, _, peer = make_counting_connection()
    send_burst(peer, ["a", "b"])
    await conn.send(await conn.recv())
    conn.start_close(1000, "bye")
    frames = peer.frames()
    assert [(f.opcode, f.data) for f in frames][:2] == [
        (Opcode.TEXT, b"a"),
        (Opcode.CLOSE, b"\x03\xe8bye"),
    ]


async def test_a_lone_message_and_a_big_one_are_written_at_once() -> None:
    conn, transport, peer = make_counting_connection()
    await conn.send("alone")
    assert transport.calls == 1
    send_burst(peer, ["a", "b"])
    await conn.recv()
    await conn.send(b"x" * 100_000)  # above the hold limit
    assert transport.calls == 2
    assert [len(f.data) for f in peer.frames()] == [5, 100_000]


async def test_broadcast_skips_and_does_not_count_closed_connections() -> None:
    from asgiws import broadcast

    open_conn, _, open_peer = make_connection()
    closed_conn, closed_transport, closed_peer = make_connection()
    closed_peer.protocol.send_close(1000)
    closed_peer.flush()
    await asyncio.wait_for(closed_conn.wait_closed(), 1)
    closed_transport.take()
    # The closed connection is still in the set (no handler removed it).
    assert broadcast([open_conn, closed_conn], "news") == 1
    assert [f.data for f in open_peer.frames()] == [b"news"]
    assert closed_transport.take() == b""


async def test_a_read_full_of_pings_is_answered_over_several_loop_turns() -> None:
    # A ping flood: one read holding thousands of tiny frames must not hold
    # the event loop (and every other connection) until all are answered.
    conn, transport, peer = make_connection()
    # More pings than one turn handles, in more bytes than one engine call
    # parses (read_limit), with each masked 5-byte ping 11 bytes on the wire.
    pings = max(12 * EVENTS_PER_TURN, 2 * conn.options.read_limit // 11)
    for _ in range(pings):
        peer.protocol.send_ping(b"flood")
    burst = b"".join(peer.protocol.data_to_send())
    conn.data_received(burst)
    answered_now = len(peer.frames())
    assert 0 < answered_now < pings
    assert not transport.reading  # the rest waits, and so does the socket
    answered = answered_now
    for _ in range(200):  # bounded: the flood needs a few dozen turns of the loop
        await asyncio.sleep(0)
        answered += len(peer.frames())
        if answered == pings:
            break
    assert answered == pings
    assert transport.reading


async def test_control_frames_read_together_with_messages_are_answered() -> None:
    """One read with messages and control frames: the messages are queued and
    the engine's replies are written (a read of messages alone skips that step)."""
    conn, transport, peer = make_connection()
    peer.protocol.send_text(b"one")
    peer.protocol.send_ping(b"p1")
    peer.protocol.send_binary(b"two")
    peer.flush()  # all three frames in one data_received
    assert [(f.opcode, f.data) for f in peer.frames()] == [(Opcode.PONG, b"p1")]
    assert [await conn.recv(), await conn.recv()] == ["one", b"two"]
    peer.send_text("three")
    peer.protocol.send_close(1001, "away")
    peer.flush()
    assert [f.opcode for f in peer.frames()] == [Opcode.CLOSE]
    assert transport.closing


async def test_a_burst_writes_what_its_connections_hold_together_on_the_next_turn() -> None:
    burst = Burst(asyncio.get_running_loop())
    first, first_transport, _ = make_connection()
    second, second_transport, _ = make_connection()

    async def accept_then_receive(conn: WebSocketConnection, head: bytes) -> None:
        # As the ASGI session's step runs: the 101, then the app waits.
        conn.write_with_burst(head, burst)
        await conn.recv()

    waiting = [
        asyncio.create_task(accept_then_receive(first, b"HTTP/1.1 101 first\r\n\r\n")),
        asyncio.create_task(accept_then_receive(second, b"HTTP/1.1 101 second\r\n\r\n")),
    ]
    await asyncio.sleep(0)  # both steps ran: each held its 101 and waits
    assert first_transport.written == second_transport.written == b""
    await asyncio.sleep(0)  # the next turn: the burst
    assert first_transport.take() == b"HTTP/1.1 101 first\r\n\r\n"
    assert second_transport.take() == b"HTTP/1.1 101 second\r\n\r\n"
    for task in waiting:
        task.cancel()


async def test_what_a_connection_writes_before_its_burst_goes_out_behind_the_held_bytes() -> None:
    burst = Burst(asyncio.get_running_loop())
    conn, transport, _ = make_connection()
    conn.write_with_burst(b"HEAD\r\n\r\n", burst)
    await conn.send("hello")  # joins the held bytes: one write with the burst
    assert transport.written == b""
    await asyncio.sleep(0)
    assert transport.take() == b"HEAD\r\n\r\n\x81\x05hello"
    # A control frame is written at once, behind what is held.
    conn.write_with_burst(b"HEAD2\r\n\r\n", burst)
    pong = await conn.ping()
    assert transport.written.startswith(b"HEAD2\r\n\r\n") and len(transport.written) > 9
    pong.cancel()


async def test_a_connection_lost_before_its_burst_writes_nothing() -> None:
    burst = Burst(asyncio.get_running_loop())
    conn, transport, _ = make_connection()
    conn.write_with_burst(b"HEAD\r\n\r\n", burst)
    conn.connection_lost(None)
    await asyncio.sleep(0)
    assert transport.written == b""
