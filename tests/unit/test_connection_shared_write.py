"""`shared_write.write_each` (C) writes a broadcast's bytes straight to a
socket only where that can neither reorder nor misdirect them, and hands the
transport whatever it did not write: the same bytes on the wire as each
transport's own write().

The C source is built here (tests/unit/c_build.py), so the C path is tested
whether or not the package build compiled it (and under
ASGIWS_NO_EXTENSIONS=1, where the fan-out writes through each transport)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from asgiws.connection import shared_write
from tests.unit.c_build import build_extension

WriteEach = shared_write.WriteEach
SOURCE = Path(shared_write.__file__).with_name("_speedups.c")


@pytest.fixture(scope="module")
def c_write_each(tmp_path_factory: pytest.TempPathFactory) -> WriteEach:
    module = build_extension(
        SOURCE, "asgiws.connection._speedups", tmp_path_factory.mktemp("shared_write")
    )
    write_each: WriteEach = module.write_each
    return write_each


class FakeTransport:
    """The three transport methods write_each calls; `written`: what went
    through write()."""

    def __init__(self, buffered: int = 0, closing: bool = False) -> None:
        self.buffered = buffered
        self.closing = closing
        self.written: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(ours, the peer's): a connected stream pair, ours non-blocking as a
    transport's socket is."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    yield ours, peer
    ours.close()
    peer.close()


def received(peer: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def fill(ours: socket.socket) -> int:
    """Write until the kernel takes no more; the bytes written."""
    total = 0
    while True:
        try:
            total += ours.send(b"x" * 65536)
        except BlockingIOError:
            return total


def test_an_idle_open_transport_is_written_around(
    c_write_each: WriteEach, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    transport = FakeTransport()
    c_write_each([transport], [ours.fileno()], b"frame")
    assert received(peer) == b"frame"
    assert transport.written == []


@pytest.mark.parametrize(
    ("why", "transport", "fd_of"),
    [
        ("bytes buffered first", FakeTransport(buffered=10), lambda s: s.fileno()),
        ("closing: its descriptor may be gone", FakeTransport(closing=True), lambda s: s.fileno()),
        ("no socket of its own (TLS)", FakeTransport(), lambda s: -1),
    ],
)
def test_everything_else_goes_through_the_transport(
    c_write_each: WriteEach,
    pair: tuple[socket.socket, socket.socket],
    why: str,
    transport: FakeTransport,
    fd_of: Callable[[socket.socket], int],
) -> None:
    ours, peer = pair
    c_write_each([transport], [fd_of(ours)], b"frame")
    assert transport.written == [b"frame"], why
    assert received(peer) == b"", why


def test_what_the_kernel_does_not_take_goes_to_the_transport(
    c_write_each: WriteEach, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
    transport = FakeTransport()
    c_write_each([transport], [ours.fileno()], data)
    [rest] = transport.written
    head = received(peer)
    assert 0 < len(head) < len(data)
    assert head + rest == data  # in order, nothing lost or doubled


def test_a_full_socket_hands_the_whole_frame_to_the_transport(
    c_write_each: WriteEach, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    filled = fill(ours)
    transport = FakeTransport()
    c_write_each([transport], [ours.fileno()], b"frame")
    assert transport.written == [b"frame"]
    assert received(peer) == b"x" * filled


def test_a_write_error_is_left_for_the_transport_to_meet(
    c_write_each: WriteEach, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    peer.close()  # the peer is gone: write() fails with EPIPE
    transport = FakeTransport()
    c_write_each([transport], [ours.fileno()], b"frame")
    assert transport.written == [b"frame"]


def test_many_transports_each_get_the_bytes_once(
    c_write_each: WriteEach, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    busy, idle, closing = FakeTransport(buffered=1), FakeTransport(), FakeTransport(closing=True)
    c_write_each([busy, idle, closing], [ours.fileno(), ours.fileno(), -1], b"m")
    assert (busy.written, idle.written, closing.written) == ([b"m"], [], [b"m"])
    assert received(peer) == b"m"


def test_bad_arguments(c_write_each: WriteEach) -> None:
    with pytest.raises(ValueError, match="one fd per transport"):
        c_write_each([FakeTransport()], [], b"m")
    with pytest.raises(TypeError, match="bytes"):
        c_write_each([FakeTransport()], [-1], bytearray(b"m"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lists"):
        c_write_each((FakeTransport(),), [-1], b"m")


def test_an_error_in_a_transport_method_propagates(
    c_write_each: WriteEach, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, _ = pair

    class Broken(FakeTransport):
        def get_write_buffer_size(self) -> int:
            raise RuntimeError("transport broken")

    with pytest.raises(RuntimeError, match="transport broken"):
        c_write_each([Broken()], [ours.fileno()], b"m")


class ExtraInfo:
    """A transport's get_extra_info over a dict."""

    def __init__(self, **info: Any) -> None:
        self.info = info

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.info.get(name, default)


def test_stream_fd_only_for_our_own_stream_socket(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    stream_fd = shared_write.stream_fd
    assert stream_fd(ExtraInfo(socket=ours)) == ours.fileno()  # type: ignore[arg-type]
    # TLS: the socket carries records, not our bytes.
    assert stream_fd(ExtraInfo(socket=ours, sslcontext=object())) == -1  # type: ignore[arg-type]
    assert stream_fd(ExtraInfo()) == -1  # type: ignore[arg-type]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        datagram.setblocking(False)
        assert stream_fd(ExtraInfo(socket=datagram)) == -1  # type: ignore[arg-type]


def test_a_blocking_socket_is_never_waited_on(c_write_each: WriteEach) -> None:
    """MSG_DONTWAIT: a full socket hands the frame to the transport at
    once, whatever the descriptor's mode."""
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        fill(ours)
        ours.setblocking(True)
        # A send that waited would give up after 5 s (SO_SNDTIMEO) instead of
        # hanging the suite, and the elapsed time would show it.
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 5, 0))
        transport = FakeTransport()
        started = time.monotonic()
        c_write_each([transport], [ours.fileno()], b"frame")
        assert time.monotonic() - started < 2.5
        assert transport.written == [b"frame"]
