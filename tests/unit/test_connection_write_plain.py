"""`shared_write.write_plain` (C) is the fan-out's member loop for its
common case: it writes exactly the members `write_prepared_to_each`'s Python
loop would write around their transports, and gives every other member back,
in order and untouched, for that loop to decide.

The C source is built here (tests/unit/c_build.py), so the C path is tested
whether or not the package build compiled it."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import asgiws.connection
from asgiws.asgi.websocket import AsgiWebSocketConnection
from asgiws.connection import WebSocketConnection, shared_write, write_prepared_to_each
from asgiws.connection.writer import Writer
from asgiws.observer import BroadcastSkipReason, Observer
from asgiws.options import connection_options_from_keywords
from asgiws.websocket.connection import ClientEngine, Engine, EngineState, ServerEngine
from asgiws.websocket.deflate import DeflateParams
from tests.unit.c_build import build_extension
from tests.unit.test_connection import FakeTransport

SOURCE = Path(shared_write.__file__).with_name("_speedups.c")
FRAME = b"\x81\x05hello"


@pytest.fixture(scope="module")
def c_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    module = build_extension(
        SOURCE, "asgiws.connection._speedups", tmp_path_factory.mktemp("write_plain")
    )
    module.bind_plain(WebSocketConnection, Writer, Engine, EngineState.OPEN)
    return module


@pytest.fixture
def write_plain(c_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> shared_write.WritePlain:
    """The C function, also as the one `write_prepared_to_each` calls."""
    function: shared_write.WritePlain = c_module.write_plain
    monkeypatch.setattr(shared_write, "write_plain", function)
    return function


class SocketTransport(FakeTransport):
    """A transport whose socket is one end of a real stream pair: the fan-out
    may write around it, and what it writes itself is recorded."""

    def __init__(self, protocol: asyncio.Protocol, sock: socket.socket) -> None:
        super().__init__(protocol)
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else super().get_extra_info(name, default)


class Member:
    """An open server connection over a socket pair, and its peer's end."""

    def __init__(
        self,
        cls: type[WebSocketConnection] = WebSocketConnection,
        engine: Engine | None = None,
        observer: Observer | None = None,
    ) -> None:
        options = connection_options_from_keywords(ws_ping_interval=None)
        ours, self.peer = socket.socketpair()
        ours.setblocking(False)
        self.peer.setblocking(False)
        self.conn = cls(options, engine=engine or ServerEngine(), observer=observer)
        self.transport = SocketTransport(self.conn, ours)
        self.conn.connection_made(self.transport)

    def received(self) -> bytes:
        try:
            return self.peer.recv(1 << 16)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        self.transport.sock.close()
        self.peer.close()


@pytest.fixture
def members() -> Iterator[Callable[..., Member]]:
    made: list[Member] = []

    def make(*args: Any, **kwargs: Any) -> Member:
        made.append(Member(*args, **kwargs))
        return made[-1]

    yield make
    for member in made:
        member.close()


def looked_up(*members: Member) -> None:
    """Each member's socket looked up, as the Python loop does on a member's
    first fan-out (the C function leaves a member whose socket is unknown)."""
    for member in members:
        writer = member.conn._writer
        writer.fd = shared_write.stream_fd(member.transport)
        assert writer.fd == member.transport.sock.fileno()


async def test_common_case_members_are_written_around_their_transports(
    write_plain: shared_write.WritePlain, members: Callable[..., Member]
) -> None:
    plain, asgi = members(), members(AsgiWebSocketConnection)
    looked_up(plain, asgi)
    assert write_plain([plain.conn, asgi.conn], FRAME, None) == (2, [])
    assert (plain.received(), asgi.received()) == (FRAME, FRAME)
    assert plain.transport.written == asgi.transport.written == b""


async def test_a_member_whose_socket_is_unknown_is_left_to_python(
    write_plain: shared_write.WritePlain, members: Callable[..., Member]
) -> None:
    member = members()
    assert write_plain([member.conn], FRAME, None) == (0, [member.conn])
    assert member.received() == b""


def corked(m: Member) -> None:
    m.conn._writer.corked = [b"held"]


def closing(m: Member) -> None:
    m.conn.start_close(1000, "")
    m.received()  # the close frame


def fragmenting(m: Member) -> None:
    m.conn._fragmented_send = asyncio.get_running_loop().create_future()


def debugging(m: Member) -> None:
    m.conn.debug = True


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(corked, id="frames held for a burst of replies"),
        pytest.param(lambda m: m.conn.pause_writing(), id="writing paused"),
        pytest.param(closing, id="our close frame sent"),
        pytest.param(lambda m: m.conn.connection_lost(None), id="connection lost"),
        pytest.param(fragmenting, id="a fragmented send under way"),
        pytest.param(debugging, id="debug logging"),
        pytest.param(lambda m: setattr(m.conn._writer, "fd", None), id="socket not looked up"),
    ],
)
async def test_every_other_member_comes_back_in_order_untouched(
    write_plain: shared_write.WritePlain,
    members: Callable[..., Member],
    change: Callable[[Member], None],
) -> None:
    first, middle, last = members(), members(), members()
    looked_up(first, middle, last)
    change(middle)
    written_by_middle = bytes(middle.transport.written)
    assert write_plain([first.conn, middle.conn, last.conn], FRAME, None) == (2, [middle.conn])
    assert (first.received(), middle.received(), last.received()) == (FRAME, b"", FRAME)
    assert bytes(middle.transport.written) == written_by_middle


async def test_members_of_other_kinds_come_back(
    write_plain: shared_write.WritePlain, members: Callable[..., Member]
) -> None:
    """A client's engine masks its frames; a connection that compresses each
    message alone gets the shared compressed frame; a reporter hears of each
    send."""
    client = members(engine=ClientEngine())
    compressing = members(
        engine=ServerEngine(deflate=DeflateParams(server_no_context_takeover=True))
    )
    reported = members(observer=Observer())
    looked_up(client, compressing, reported)  # (the Python loop would not, for these)
    conns = [client.conn, compressing.conn, reported.conn]
    assert write_plain(conns, FRAME, None) == (0, conns)
    assert [m.received() for m in (client, compressing, reported)] == [b"", b"", b""]


async def test_the_bound_on_queued_bytes(
    write_plain: shared_write.WritePlain, members: Callable[..., Member]
) -> None:
    member = members()
    looked_up(member)
    member.transport.buffered = 100  # bytes the transport still holds
    assert write_plain([member.conn], FRAME, 99) == (0, [member.conn])
    # Within the bound: written, behind the held bytes, by the transport.
    assert write_plain([member.conn], FRAME, 100) == (1, [])
    assert bytes(member.transport.written) == FRAME
    assert member.received() == b""


async def test_a_subclass_that_replaces_a_slot_is_left_to_python(
    write_plain: shared_write.WritePlain, members: Callable[..., Member]
) -> None:
    class Verbose(WebSocketConnection):
        """Always logs frames, whatever the base class's `debug` slot holds
        (the setter still fills it): that slot is not what counts here."""

        @property
        def debug(self) -> bool:
            return True

        @debug.setter
        def debug(self, value: bool) -> None:
            WebSocketConnection.__dict__["debug"].__set__(self, value)

    class Watched(WebSocketConnection):
        """Answers every attribute read itself."""

        def __getattribute__(self, name: str) -> Any:
            return True if name == "debug" else super().__getattribute__(name)

    for cls in (Verbose, Watched):
        member = members(cls)
        looked_up(member)
        assert write_plain([member.conn], FRAME, None) == (0, [member.conn]), cls
        assert member.received() == b""


async def test_write_prepared_to_each_counts_both_paths(
    write_plain: shared_write.WritePlain, members: Callable[..., Member]
) -> None:
    fast, paused = members(), members()
    looked_up(fast, paused)
    paused.conn.pause_writing()
    written, skipped = write_prepared_to_each([fast.conn, paused.conn], ["m"], [FRAME])
    # Back from C, the paused member is the Python loop's: a slow reader, skipped.
    assert (written, skipped) == (1, [(paused.conn, BroadcastSkipReason.SLOW_READER)])
    assert (fast.received(), paused.received()) == (FRAME, b"")
    assert paused.transport.written == b""


async def test_bind_plain_needs_the_slots_and_a_failed_call_changes_nothing(
    tmp_path: Path, members: Callable[..., Member]
) -> None:
    module = build_extension(SOURCE, "asgiws.connection._speedups", tmp_path)
    with pytest.raises(RuntimeError, match="bind_plain"):
        module.write_plain([], b"m", None)

    class NoSlots:
        pass

    class Other:
        __slots__ = ("_engine", "_fragmented_send", "_lost", "_reporter", "_writer", "debug")

    with pytest.raises(AttributeError):
        module.bind_plain(NoSlots, Writer, Engine, EngineState.OPEN)
    with pytest.raises(TypeError, match="not a slot"):
        module.bind_plain(WebSocketConnection, Writer, type("E", (), {"state": 1}), None)
    with pytest.raises(RuntimeError, match="bind_plain"):
        module.write_plain([], b"m", None)

    module.bind_plain(WebSocketConnection, Writer, Engine, EngineState.OPEN)
    # Other's slots sit elsewhere; the engine class is not one: refused, and
    # the binding that was there still reads WebSocketConnection right.
    with pytest.raises(TypeError, match="not a slot"):
        module.bind_plain(Other, Writer, type("E", (), {"state": 1}), None)
    member = members()
    looked_up(member)
    assert module.write_plain([member.conn], FRAME, None) == (1, [])
    assert member.received() == FRAME


def test_bad_arguments(c_module: ModuleType) -> None:
    with pytest.raises(TypeError, match="a list"):
        c_module.write_plain((), b"m", None)
    with pytest.raises(TypeError, match="bytes"):
        c_module.write_plain([], bytearray(b"m"), None)
    with pytest.raises(TypeError, match="int or None"):
        c_module.write_plain([], b"m", 1.5)


def test_an_older_build_leaves_the_fan_out_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build from before write_plain (not rebuilt since) still imports."""
    older = ModuleType("asgiws.connection._speedups")
    older.write_each = lambda transports, fds, data: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "asgiws.connection._speedups", older)
    monkeypatch.setattr(asgiws.connection, "_speedups", older, raising=False)
    monkeypatch.setattr(shared_write, "write_each", older.write_each)
    monkeypatch.setattr(shared_write, "write_plain", None)
    shared_write.bind_plain(WebSocketConnection, Writer, Engine, EngineState.OPEN)
    assert shared_write.write_plain is None
