"""Shared compressed frames: hub and `broadcast()` members whose server side
negotiated permessage-deflate with server_no_context_takeover get one
compressed frame per compression setting (RSV1 set on the wire), compressed
once per message per setting; every other member gets the uncompressed frame.

The clients are `websockets` with its own permessage-deflate; a recording
extension wrapped around it notes the RSV1 bit of each data frame as it came
off the wire, before websockets inflates it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import websockets
from websockets.extensions.base import ClientExtensionFactory, Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode

from asgiws import WebSocketConnection, broadcast, serve
from asgiws.hub import shared_frames
from asgiws.websocket.connection import encode_compressed_server_frame
from tests.conftest import StartServer
from tests.integration.test_hub_redis import APP, TIMEOUT, wait_until

LONG_TEXT = "the quick brown fox jumps over the lazy dog; " * 2000  # 90 KB, compresses well
# Random bytes repeated 2,000 bytes apart: only a window above 10 bits finds
# the repeat, so the members at 10 bits need a compression of their own.
FAR_REPEAT = random.Random(7).randbytes(2000) * 2
MESSAGES: list[str | bytes] = [
    "hello hello hello hello hello hello",
    LONG_TEXT,
    FAR_REPEAT,
    b"\x00\x01\x02" * 500,
    "",
    "ünïcødé ✓ 𝄞 " * 20,
    "end",
]


class RecordingExtension(Extension):
    """Notes each data frame's RSV1 bit, then lets the real extension decode it."""

    def __init__(self, inner: Extension, rsv1: list[bool]) -> None:
        self.name = inner.name
        self.inner = inner
        self.rsv1 = rsv1

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.rsv1.append(frame.rsv1)
        return self.inner.decode(frame, max_size=max_size)

    def encode(self, frame: Frame) -> Frame:
        return self.inner.encode(frame)


class RecordingDeflateFactory(ClientExtensionFactory):
    """websockets' permessage-deflate offer, its extension wrapped in a recorder."""

    def __init__(self, rsv1: list[bool], **kwargs: Any) -> None:
        self.inner = ClientPerMessageDeflateFactory(**kwargs)
        self.name = self.inner.name
        self.rsv1 = rsv1

    def get_request_params(self) -> Sequence[tuple[str, str | None]]:
        return self.inner.get_request_params()

    def process_response_params(
        self, params: Sequence[tuple[str, str | None]], accepted_extensions: Sequence[Extension]
    ) -> Extension:
        inner = self.inner.process_response_params(params, accepted_extensions)
        return RecordingExtension(inner, self.rsv1)


class Member:
    """One client: what it offers, and the RSV1 bits it saw."""

    def __init__(self, **deflate: Any) -> None:
        self.rsv1: list[bool] = []
        self.extensions: list[ClientExtensionFactory] | None = (
            None if deflate.pop("off", False)
            else [RecordingDeflateFactory(self.rsv1, **deflate)]
        )
        self.client: websockets.ClientConnection | None = None

    async def connect(self, url: str) -> websockets.ClientConnection:
        self.client = await websockets.connect(
            url, extensions=self.extensions, compression=None, max_size=None
        )
        return self.client

    async def receive(self, count: int) -> list[str | bytes]:
        assert self.client is not None
        return [await asyncio.wait_for(self.client.recv(), TIMEOUT) for _ in range(count)]


async def publish_to(base: str, members: list[Member], channel: str) -> dict[str, Any]:
    """Connect every member to `channel`, publish MESSAGES, return the hub's stats."""
    ws_base = "ws" + base[len("http"):]
    async with httpx.AsyncClient() as http:
        for member in members:
            await member.connect(f"{ws_base}/ws/{channel}")

        async def joined() -> bool:
            response = await http.get(f"{base}/status", params={"channel": channel})
            return bool(response.json()["members"] == len(members))

        await wait_until(joined, f"{len(members)} clients joined")
        for message in MESSAGES:
            binary = isinstance(message, bytes)
            body = message if isinstance(message, bytes) else message.encode()
            response = await http.post(
                f"{base}/publish/{channel}", content=body, params={"binary": "1"} if binary else {}
            )
            assert response.status_code == 200, response.text
        for member in members:
            assert await member.receive(len(MESSAGES)) == MESSAGES
            assert member.client is not None
            await member.client.close()
        stats: dict[str, Any] = (await http.get(f"{base}/status")).json()["stats"]
        return stats


async def test_hub_compresses_once_per_setting_for_no_context_takeover_members(
    run_server: StartServer,
) -> None:
    server = run_server(APP)
    default_window = [Member(server_no_context_takeover=True) for _ in range(3)]
    window_10 = [
        Member(server_no_context_takeover=True, server_max_window_bits=10) for _ in range(2)
    ]
    context_takeover = [Member() for _ in range(2)]
    uncompressed = [Member(off=True)]
    members = default_window + window_10 + context_takeover + uncompressed
    stats = await publish_to(server.url, members, "shared")

    for member in default_window + window_10:
        assert member.rsv1 == [True] * len(MESSAGES)
    for member in context_takeover:
        assert member.rsv1 == [False] * len(MESSAGES)
    # Two settings in use (window 12, the server's default, and 10): two
    # compressions per message, whatever the number of members.
    assert stats["compressed"] == 2 * len(MESSAGES)
    assert stats["delivered"] == len(members) * len(MESSAGES)


async def test_server_option_makes_every_deflate_member_share(run_server: StartServer) -> None:
    """--ws-deflate-server-no-context-takeover: the server asks for it, so
    clients that did not offer it share the compressed frames too."""
    server = run_server(APP, "--ws-deflate-server-no-context-takeover")
    members = [Member() for _ in range(3)] + [Member(off=True)]
    stats = await publish_to(server.url, members, "asked")
    for member in members[:3]:
        assert member.rsv1 == [True] * len(MESSAGES)
    assert stats["compressed"] == len(MESSAGES)


async def test_without_no_context_takeover_nothing_is_compressed(run_server: StartServer) -> None:
    server = run_server(APP)
    members = [Member(), Member(off=True)]
    stats = await publish_to(server.url, members, "plain")
    assert members[0].rsv1 == [False] * len(MESSAGES)
    assert stats["compressed"] == 0


async def test_broadcast_shares_compressed_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """`broadcast()` under serve(): one compression per setting per call."""
    compressions: list[int] = []
    real = encode_compressed_server_frame

    def counting(opcode: int, payload: bytes, compressor: Any) -> list[bytes]:
        compressions.append(opcode)
        return real(opcode, payload, compressor)

    # A spy: the real compression runs, the test counts the calls.
    monkeypatch.setattr(shared_frames, "encode_compressed_server_frame", counting)
    connected: set[WebSocketConnection] = set()
    all_in = asyncio.Event()
    members = [Member(server_no_context_takeover=True) for _ in range(3)] + [Member()]

    async def handler(websocket: WebSocketConnection) -> None:
        connected.add(websocket)
        if len(connected) == len(members):
            all_in.set()
        await websocket.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        for member in members:
            await member.connect(f"ws://127.0.0.1:{port}/")
        await asyncio.wait_for(all_in.wait(), TIMEOUT)
        for message in MESSAGES:
            assert broadcast(connected, message) == len(members)
        for member in members:
            assert await member.receive(len(MESSAGES)) == MESSAGES
            assert member.client is not None
            await member.client.close()
    for member in members[:3]:
        assert member.rsv1 == [True] * len(MESSAGES)
    assert members[3].rsv1 == [False] * len(MESSAGES)
    assert len(compressions) == len(MESSAGES)
