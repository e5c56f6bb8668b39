"""The engine running a chain of negotiated extensions frame by frame
(`asgiws.websocket.chain`), and the chain's negotiation
(`asgiws.extensions.negotiation`): order, RSV bits, errors, and the choice
between the chain and the permessage-deflate fast paths."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from asgiws.exceptions import NegotiationError, PayloadTooBig
from asgiws.extensions import (
    ClientExtensionFactory,
    ClientPerMessageDeflateFactory,
    Extension,
    ExtensionParameter,
    Frame,
    PerMessageDeflate,
    ServerExtensionFactory,
    ServerPerMessageDeflateFactory,
)
from asgiws.extensions.negotiation import (
    accept_response,
    client_factories,
    client_offer_value,
    engine_arguments,
    negotiate_server,
    server_factories,
)
from asgiws.websocket import deflate
from asgiws.websocket.connection import ClientEngine, Engine, ServerEngine
from asgiws.websocket.deflate import DEFAULT_SERVER_MAX_WINDOW_BITS
from asgiws.websocket.errors import HandshakeError
from asgiws.websocket.events import BytesMessage, ConnectionFailed, Event, Ping, TextMessage


class Xor(Extension):
    """XORs data frames with `key`; defines RSV2 (set on what it encoded)."""

    name = "x-test-xor"

    def __init__(self, key: int = 0x5A) -> None:
        self.key = key

    def _xor(self, data: bytes) -> bytes:
        return bytes(b ^ self.key for b in data)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode >= 0x8 or not frame.rsv2:
            return frame
        return dataclasses.replace(frame, data=self._xor(frame.data), rsv2=False)

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode >= 0x8:
            return frame
        return dataclasses.replace(frame, data=self._xor(frame.data), rsv2=True)


class Tag(Extension):
    """Appends its tag to every data frame's payload and strips it: shows
    the order extensions run in."""

    def __init__(self, tag: bytes, log: list[str]) -> None:
        self.name = "x-tag-" + tag.decode()
        self.tag = tag
        self.log = log

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode >= 0x8:
            return frame
        self.log.append("decode " + self.tag.decode())
        assert frame.data.endswith(self.tag), (frame.data, self.tag)
        return dataclasses.replace(frame, data=frame.data[: -len(self.tag)])

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode >= 0x8:
            return frame
        self.log.append("encode " + self.tag.decode())
        return dataclasses.replace(frame, data=frame.data + self.tag)


def _pmd(is_server: bool) -> PerMessageDeflate:
    return PerMessageDeflate(deflate.DeflateParams(), is_server=is_server)


def _pair(
    server_chain: Sequence[Extension], client_chain: Sequence[Extension], max_size: int = 2**20
) -> tuple[ServerEngine, ClientEngine]:
    return (
        ServerEngine(max_size=max_size, extensions=server_chain),
        ClientEngine(max_size=max_size, extensions=client_chain),
    )


def _deliver(frames: list[bytes], engine: Engine, step: int = 0) -> list[Event]:
    data = b"".join(frames)
    if not step:
        return engine.receive_data(data)
    events: list[Event] = []
    for i in range(0, len(data), step):  # any split of the stream
        events += engine.receive_data(data[i : i + step])
    return events


@pytest.mark.parametrize("step", [0, 1, 7])
def test_messages_round_trip_through_the_chain_both_ways(step: int) -> None:
    server, client = _pair([Xor()], [Xor()])
    for text in ["héllo", "x" * 70_000, ""]:
        assert _deliver(client.send_text(text), server, step) == [TextMessage(text)]
        assert _deliver(server.send_text(text), client, step) == [TextMessage(text)]
    assert _deliver(server.send_binary(b"\x00\xff" * 40), client, step) == [
        BytesMessage(b"\x00\xff" * 40)
    ]
    fragments = client.send_fragment("ab", fin=False) + client.send_fragment("cd", fin=True)
    assert _deliver(fragments, server, step) == [TextMessage("abcd")]


def test_frames_on_the_wire_carry_what_the_extension_encoded() -> None:
    server, _ = _pair([Xor()], [Xor()])
    (frame,) = server.send_text("ab")
    assert frame == bytes((0x80 | 0x20 | 0x1, 2)) + bytes((ord("a") ^ 0x5A, ord("b") ^ 0x5A))
    assert server.send_ping(b"p") == [b"\x89\x01p"]  # control frames: unchanged by Xor


def test_encode_runs_in_negotiation_order_and_decode_in_reverse() -> None:
    log: list[str] = []
    server, client = _pair([Tag(b"1", log), Tag(b"2", log)], [Tag(b"1", log), Tag(b"2", log)])
    frames = client.send_binary(b"data")
    assert log == ["encode 1", "encode 2"]
    log.clear()
    assert server.receive_data(b"".join(frames)) == [BytesMessage(b"data")]
    assert log == ["decode 2", "decode 1"]


@pytest.mark.parametrize("order", ["xor,deflate", "deflate,xor"])
def test_permessage_deflate_stacks_with_another_extension(order: str) -> None:
    def chain(is_server: bool) -> list[Extension]:
        return [Xor() if n == "xor" else _pmd(is_server) for n in order.split(",")]

    server, client = _pair(chain(True), chain(False))
    text = "compress me " * 500
    frames = client.send_text(text)
    assert len(b"".join(frames)) < len(text) // 4  # compressed on the wire
    assert b"".join(frames)[0] & 0x60 == 0x60  # RSV1 (deflate) and RSV2 (xor)
    assert _deliver(frames, server, 5) == [TextMessage(text)]
    assert server.receive_data(b"".join(client.send_text(text))) == [TextMessage(text)]
    assert _deliver(server.send_text(text), client) == [TextMessage(text)]


def _client_frame(b0: int, payload: bytes) -> bytes:
    return bytes((b0, 0x80 | len(payload))) + b"\x00\x00\x00\x00" + payload


def test_rsv_bits_no_extension_defines_fail_with_1002() -> None:
    # RSV2 with Xor negotiated: decoded.
    server, _ = _pair([Xor()], [Xor()])
    xored = bytes(b ^ 0x5A for b in b"hi")
    assert server.receive_data(_client_frame(0x80 | 0x20 | 0x1, xored)) == [TextMessage("hi")]
    # RSV3: no negotiated extension defines it.
    (failed,) = server.receive_data(_client_frame(0x80 | 0x10 | 0x1, b"hi"))
    assert isinstance(failed, ConnectionFailed) and failed.code == 1002
    assert "RSV3" in failed.reason
    # RSV1 on a chain without permessage-deflate.
    server, _ = _pair([Xor()], [Xor()])
    (failed,) = server.receive_data(_client_frame(0x80 | 0x40 | 0x1, b"hi"))
    assert isinstance(failed, ConnectionFailed) and failed.code == 1002
    # RSV2 without any extension: the decoder refuses the header.
    plain = ServerEngine()
    (failed,) = plain.receive_data(_client_frame(0x80 | 0x20 | 0x1, b"hi"))
    assert isinstance(failed, ConnectionFailed) and failed.code == 1002


def test_rsv1_on_a_continuation_frame_fails_with_deflate_in_the_chain() -> None:
    # RFC 7692 6.1: the Per-Message Compressed bit belongs to the first frame only.
    server, client = _pair([Xor(), _pmd(True)], [Xor(), _pmd(False)])
    first = client.send_fragment("ab", fin=False)
    assert server.receive_data(b"".join(first)) == []
    (failed,) = server.receive_data(_client_frame(0x80 | 0x40 | 0x0, b""))
    assert isinstance(failed, ConnectionFailed) and failed.code == 1002


def test_extension_errors_close_with_the_matching_code() -> None:
    class Raises(Xor):
        def __init__(self, exc: Exception) -> None:
            super().__init__()
            self.exc = exc

        def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
            raise self.exc

    for exc, code in [
        (PayloadTooBig("too big"), 1009),
        (NegotiationError("?"), 1011),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), 1007),
        (RuntimeError("bug"), 1011),
    ]:
        server = ServerEngine(extensions=[Raises(exc)])
        events = server.receive_data(_client_frame(0x82, b"x") + _client_frame(0x89, b"p"))
        assert isinstance(events[0], ConnectionFailed) and events[0].code == code, exc
        assert len(events) == 1  # then discarding: the ping is dropped


def test_max_size_bounds_frames_before_buffering_and_messages_after_decoding() -> None:
    server, client = _pair([Xor()], [Xor()], max_size=10)
    # A header announcing more than max_size: refused before its payload.
    header = bytes((0x82 | 0x20, 0x80 | 126)) + (1000).to_bytes(2, "big") + b"mask"
    (failed,) = server.receive_data(header)
    assert isinstance(failed, ConnectionFailed) and failed.code == 1009
    # Fragments each under the limit, a message over it.
    server, client = _pair([Xor()], [Xor()], max_size=10)
    frames = client.send_fragment(b"123456", fin=False) + client.send_fragment(b"789012", fin=True)
    events = server.receive_data(b"".join(frames))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009
    # permessage-deflate in the chain: inflating past max_size is 1009 too.
    server, client = _pair([Xor(), _pmd(True)], [Xor(), _pmd(False)], max_size=100)
    (failed,) = server.receive_data(b"".join(client.send_text("a" * 1000)))
    assert isinstance(failed, ConnectionFailed) and failed.code == 1009


def test_the_chain_does_not_use_the_scanner_or_plain_broadcast_frames() -> None:
    chained = ServerEngine(extensions=[Xor()])
    assert chained.extensions and not chained.sends_plain_frames
    plain = ServerEngine(deflate=deflate.DeflateParams())
    assert plain.extensions == () and plain.sends_plain_frames
    with pytest.raises(ValueError):
        ServerEngine(deflate=deflate.DeflateParams(), extensions=[Xor()])


def test_close_frame_after_a_failure_still_ends_the_stream() -> None:
    server, client = _pair([Xor()], [Xor()])
    events = server.receive_data(_client_frame(0x80 | 0x10 | 0x1, b"x"))
    assert isinstance(events[0], ConnectionFailed)
    assert server.receive_data(b"".join(client.send_ping(b"p"))) == []  # discarded
    assert server.receive_data(b"".join(client.send_close(1000))) == []
    assert server.their_state.value == "CLOSE_RECEIVED"
    assert client.receive_data(b"".join(server.send_ping(b"q"))) == [Ping(b"q")]


# --- negotiation ------------------------------------------------------------------------


class XorServerFactory(ServerExtensionFactory):
    name = "x-test-xor"

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        if list(params) != [("key", "90")]:
            raise NegotiationError("only key=90")
        return [("key", "90")], Xor(90)


class XorClientFactory(ClientExtensionFactory):
    name = "x-test-xor"

    def get_request_params(self) -> list[ExtensionParameter]:
        return [("key", "90")]

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> Extension:
        if list(params) != [("key", "90")]:
            raise NegotiationError("only key=90")
        return Xor(90)


def test_server_tries_each_offer_in_order_and_skips_declined_ones() -> None:
    factories = server_factories([XorServerFactory(), ServerPerMessageDeflateFactory()], None)
    value, accepted = negotiate_server(
        ["x-test-xor; key=1, permessage-deflate, x-test-xor; key=90"], factories
    )
    bits = DEFAULT_SERVER_MAX_WINDOW_BITS
    assert value == f"permessage-deflate; server_max_window_bits={bits}, x-test-xor; key=90"
    assert [e.name for e in accepted] == ["permessage-deflate", "x-test-xor"]
    assert negotiate_server([], factories) == (None, [])
    with pytest.raises(HandshakeError) as info:
        negotiate_server(["x-test-xor;;"], factories)
    assert info.value.status == 400


def test_client_offers_every_factory_and_accepts_the_answer_in_order() -> None:
    factories = client_factories([XorClientFactory(), ClientPerMessageDeflateFactory()], None)
    offer = client_offer_value(factories)
    assert offer is not None and offer.startswith("x-test-xor; key=90, permessage-deflate")
    answer = ["permessage-deflate; server_max_window_bits=12", "x-test-xor; key=90"]
    accepted = accept_response(answer, factories)
    assert [e.name for e in accepted] == ["permessage-deflate", "x-test-xor"]
    with pytest.raises(NegotiationError, match="x-unknown"):
        accept_response(["x-unknown"], factories)
    with pytest.raises(NegotiationError, match="x-test-xor"):
        accept_response(["x-test-xor; key=1"], factories)


def test_compression_adds_permessage_deflate_last_unless_listed() -> None:
    options = deflate.DeflateOptions()
    names = [f.name for f in server_factories([XorServerFactory()], options)]
    assert names == ["x-test-xor", "permessage-deflate"]
    assert [f.name for f in client_factories([XorClientFactory()], None)] == ["x-test-xor"]
    # permessage-deflate alone (or nothing): the engine's own negotiation.
    assert server_factories([ServerPerMessageDeflateFactory()], options) == ()
    assert client_factories(None, options) == ()


def test_permessage_deflate_alone_runs_on_the_fast_paths() -> None:
    assert engine_arguments([]) == {}
    alone = engine_arguments([_pmd(True)])
    assert set(alone) == {"deflate"}
    assert set(engine_arguments([_pmd(True), Xor()])) == {"extensions"}

    class Subclass(PerMessageDeflate):
        pass

    subclass = Subclass(deflate.DeflateParams(), is_server=True)
    assert set(engine_arguments([subclass])) == {"extensions"}
