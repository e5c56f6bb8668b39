"""Extensions other than permessage-deflate, on the wire with the `websockets`
library as the peer: a test extension, "x-test-xor", written once per
library on its own extension interface (XOR of every data frame's payload
with a negotiated byte, RSV2 set on the frames it encoded), negotiated in
the handshake, run on every frame, alone and stacked with
permessage-deflate in both orders; RSV bits that no negotiated extension
defines still fail the connection with 1002 (RFC 6455 5.2)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
import struct
from collections.abc import Sequence
from typing import Any

import pytest
import websockets.extensions.base as peer_base
from websockets.asyncio.client import connect as peer_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as peer_serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory as PeerClientDeflate,
)
from websockets.extensions.permessage_deflate import (
    ServerPerMessageDeflateFactory as PeerServerDeflate,
)

import asgiws
import asgiws.extensions.base as our_base
from asgiws.exceptions import ConnectionClosedError, NegotiationError
from asgiws.extensions import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

TIMEOUT = 5.0
NAME = "x-test-xor"
KEY = 0x5A
_DATA_OPCODES = (0x0, 0x1, 0x2)


def xor_extension_classes(base: Any) -> tuple[Any, Any, Any]:
    """The test extension and its two factories on `base` (websockets'
    `websockets.extensions.base` or ours): the same code on both sides."""

    class Xor(base.Extension):  # type: ignore[misc]
        name = NAME

        def __init__(self, key: int) -> None:
            self.key = key
            self.decoded_rsv2 = 0  # frames that came with RSV2 set and were decoded

        def _xor(self, data: bytes) -> bytes:
            return bytes(b ^ self.key for b in data)

        def decode(self, frame: Any, *, max_size: int | None = None) -> Any:
            if frame.opcode not in _DATA_OPCODES or not frame.rsv2:
                return frame  # not ours: RSV2 is what this extension defines
            self.decoded_rsv2 += 1
            return dataclasses.replace(frame, data=self._xor(bytes(frame.data)), rsv2=False)

        def encode(self, frame: Any) -> Any:
            if frame.opcode not in _DATA_OPCODES:
                return frame
            return dataclasses.replace(frame, data=self._xor(bytes(frame.data)), rsv2=True)

    def key_of(params: Sequence[tuple[str, str | None]]) -> int:
        values = dict(params)
        if set(values) != {"key"} or values["key"] is None or not values["key"].isdigit():
            raise base_negotiation_error(base)(f"bad {NAME} parameters {params!r}")
        return int(values["key"])

    class ServerXorFactory(base.ServerExtensionFactory):  # type: ignore[misc]
        name = NAME

        def __init__(self) -> None:
            self.made: list[Xor] = []

        def process_request_params(
            self, params: Sequence[tuple[str, str | None]], accepted_extensions: Sequence[Any]
        ) -> tuple[list[tuple[str, str | None]], Any]:
            extension = Xor(key_of(params))
            self.made.append(extension)
            return [("key", str(extension.key))], extension

    class ClientXorFactory(base.ClientExtensionFactory):  # type: ignore[misc]
        name = NAME

        def __init__(self, key: int = KEY) -> None:
            self.key = key
            self.made: list[Xor] = []

        def get_request_params(self) -> list[tuple[str, str | None]]:
            return [("key", str(self.key))]

        def process_response_params(
            self, params: Sequence[tuple[str, str | None]], accepted_extensions: Sequence[Any]
        ) -> Any:
            extension = Xor(key_of(params))
            self.made.append(extension)
            return extension

    return Xor, ServerXorFactory, ClientXorFactory


def base_negotiation_error(base: Any) -> type[Exception]:
    if base is our_base:
        return NegotiationError
    from websockets.exceptions import NegotiationError as PeerNegotiationError

    return PeerNegotiationError


_, OurServerXor, OurClientXor = xor_extension_classes(our_base)
_, PeerServerXor, PeerClientXor = xor_extension_classes(peer_base)


def port_of(server: asgiws.WebSocketServer) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echo(websocket: asgiws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


async def peer_echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


MESSAGES: list[str | bytes] = ["héllo " * 300, b"\x00\x01\xff" * 50, "", "short"]


# --- asgiws server, websockets client ----------------------------------------------------


def stacks(stack: str, xor: tuple[Any, Any], deflate: tuple[Any, Any]) -> tuple[list[Any], ...]:
    """Our factories and the peer's for `stack` ("xor,deflate" ...), and the
    names the response must list, in that order."""
    ours: list[Any] = []
    theirs: list[Any] = []
    for name in stack.split(","):
        our_class, their_class = xor if name == "xor" else deflate
        ours.append(our_class())
        theirs.append(their_class())
    return ours, theirs, [NAME if n == "xor" else "permessage-deflate" for n in stack.split(",")]


def agreed_names(header: str) -> list[str]:
    return [value.split(";")[0].strip() for value in header.split(",")]


def assert_both_xors_decoded_every_message(ours: list[Any], theirs: list[Any]) -> None:
    # Every data frame went through the extension both ways, RSV2 set on the wire.
    for factories in (ours, theirs):
        (xor,) = (f.made[0] for f in factories if getattr(f, "name", "") == NAME)
        assert xor.decoded_rsv2 == len(MESSAGES)


STACKS = ["xor", "xor,deflate", "deflate,xor"]


@pytest.mark.parametrize("stack", STACKS)
async def test_asgiws_server_runs_the_chain_with_a_websockets_client(stack: str) -> None:
    ours, theirs, names = stacks(
        stack, (OurServerXor, PeerClientXor), (ServerPerMessageDeflateFactory, PeerClientDeflate)
    )
    async with asgiws.serve(echo, "127.0.0.1", 0, compression=None, extensions=ours) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        async with peer_connect(url, extensions=theirs, compression=None) as ws:
            assert ws.response is not None
            # RFC 6455 9.1: the response lists them in the order they run in.
            assert agreed_names(ws.response.headers["Sec-WebSocket-Extensions"]) == names
            for message in MESSAGES:
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == message
    assert_both_xors_decoded_every_message(ours, theirs)


async def test_server_declines_an_offer_its_factory_refuses() -> None:
    # A NegotiationError declines the offer: the connection runs without it.
    async with asgiws.serve(
        echo, "127.0.0.1", 0, compression=None, extensions=[OurServerXor()]
    ) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"

        class BadOffer(PeerClientXor):  # type: ignore[misc,valid-type]
            def get_request_params(self) -> list[tuple[str, str | None]]:
                return [("key", "not-a-number")]

        async with peer_connect(url, extensions=[BadOffer()], compression=None) as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send("plain")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "plain"


async def test_default_compression_joins_the_chain_as_websockets_does() -> None:
    # compression="deflate" (the default) adds permessage-deflate after the
    # listed extensions, on both our server and our client.
    async with asgiws.serve(echo, "127.0.0.1", 0, extensions=[OurServerXor()]) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        async with asgiws.connect(url, extensions=[OurClientXor()]) as mine:
            offered = mine.request_headers["Sec-WebSocket-Extensions"]
            assert offered.startswith(f"{NAME}; key={KEY}, permessage-deflate")
            agreed = mine.response_headers["Sec-WebSocket-Extensions"]
            assert agreed.startswith(f"{NAME}; key={KEY}, permessage-deflate")
            await mine.send("x" * 4000)
            assert await asyncio.wait_for(mine.recv(), TIMEOUT) == "x" * 4000


async def test_broadcast_runs_each_connections_chain() -> None:
    # broadcast() encodes a frame once for plain connections; one with an
    # extension chain must encode its own (the peer would read garbage).
    opened: list[asgiws.WebSocketServerProtocol] = []
    both_open = asyncio.Event()

    async def wait_then_idle(websocket: asgiws.WebSocketServerProtocol) -> None:
        opened.append(websocket)
        if len(opened) == 2:
            both_open.set()
        await websocket.wait_closed()

    async with asgiws.serve(
        wait_then_idle, "127.0.0.1", 0, compression=None, extensions=[OurServerXor()]
    ) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        peer_xor = PeerClientXor()
        async with peer_connect(url, extensions=[peer_xor], compression=None) as xored:
            async with peer_connect(url, compression=None) as plain:
                await asyncio.wait_for(both_open.wait(), TIMEOUT)
                assert asgiws.broadcast(opened, "to all") == 2
                assert await asyncio.wait_for(xored.recv(), TIMEOUT) == "to all"
                assert await asyncio.wait_for(plain.recv(), TIMEOUT) == "to all"
                assert peer_xor.made[0].decoded_rsv2 == 1  # encoded by our chain, RSV2 set


# --- asgiws client, websockets server ----------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
async def test_asgiws_client_runs_the_chain_with_a_websockets_server(stack: str) -> None:
    ours, theirs, names = stacks(
        stack, (OurClientXor, PeerServerXor), (ClientPerMessageDeflateFactory, PeerServerDeflate)
    )
    async with peer_serve(peer_echo, "127.0.0.1", 0, extensions=theirs, compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/"
        async with asgiws.connect(url, extensions=ours, compression=None) as mine:
            assert agreed_names(mine.response_headers["Sec-WebSocket-Extensions"]) == names
            for message in MESSAGES:
                await mine.send(message)
                assert await asyncio.wait_for(mine.recv(), TIMEOUT) == message
    assert_both_xors_decoded_every_message(ours, theirs)


async def test_client_fails_the_handshake_on_an_answer_no_factory_accepts() -> None:
    # RFC 6455 4.1: an extension in the answer that the client cannot use
    # fails the connection (here our factory declines the server's answer).
    class OtherServer(PeerServerXor):  # type: ignore[misc,valid-type]
        name = "x-other"

    class DecliningClient(OurClientXor):  # type: ignore[misc,valid-type]
        name = "x-other"

        def process_response_params(self, params: Any, accepted: Any) -> Any:
            raise NegotiationError("not acceptable")

    async with peer_serve(
        peer_echo, "127.0.0.1", 0, extensions=[OtherServer()], compression=None
    ) as srv:
        url = f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/"
        with pytest.raises(NegotiationError, match="x-other"):
            await asyncio.wait_for(asgiws.connect(url, extensions=[DecliningClient()]), TIMEOUT)


# --- RSV bits on the wire ----------------------------------------------------------------


def _masked_frame(b0: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes((b0, 0x80 | len(payload))) + mask + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", await reader.readexactly(2))
    return b0, await reader.readexactly(length)


async def _raw_client(port: int, offer: str | None) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET / HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if offer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {offer}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_rsv2_is_accepted_only_where_the_extension_was_negotiated() -> None:
    payload = b"rsv2"
    xored = bytes(b ^ KEY for b in payload)
    async with asgiws.serve(
        echo, "127.0.0.1", 0, compression=None, extensions=[OurServerXor()]
    ) as server:
        port = port_of(server)
        # Negotiated: an RSV2 frame is the extension's, decoded and echoed.
        reader, writer = await _raw_client(port, f"{NAME}; key={KEY}")
        writer.write(_masked_frame(0x80 | 0x20 | 0x1, xored))
        b0, data = await asyncio.wait_for(_read_frame(reader), TIMEOUT)
        assert (b0, data) == (0x80 | 0x20 | 0x1, xored)
        # RSV3 is defined by no negotiated extension: 1002.
        writer.write(_masked_frame(0x80 | 0x10 | 0x1, payload))
        b0, data = await asyncio.wait_for(_read_frame(reader), TIMEOUT)
        assert b0 == 0x88 and int.from_bytes(data[:2], "big") == 1002
        writer.close()
        # Not negotiated (the client offered nothing): RSV2 fails with 1002.
        reader, writer = await _raw_client(port, None)
        writer.write(_masked_frame(0x80 | 0x20 | 0x1, xored))
        b0, data = await asyncio.wait_for(_read_frame(reader), TIMEOUT)
        assert b0 == 0x88 and int.from_bytes(data[:2], "big") == 1002
        writer.close()


async def test_client_fails_an_rsv2_frame_from_a_server_that_declined_the_extension() -> None:
    closes: list[int] = []

    async def declining_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert NAME.encode() in head  # offered, but not accepted below
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        writer.write(bytes((0x80 | 0x20 | 0x1, 2)) + b"hi")
        b0, b1 = await reader.readexactly(2)
        body = await reader.readexactly(4 + (b1 & 0x7F))
        mask, masked = body[:4], body[4:]
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
        if b0 & 0x0F == 0x8:
            closes.append(int.from_bytes(data[:2], "big"))
        writer.close()

    server = await asyncio.start_server(declining_server, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/"
        async with asgiws.connect(url, extensions=[OurClientXor()], compression=None) as mine:
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(mine.recv(), TIMEOUT)
    assert closes == [1002]
