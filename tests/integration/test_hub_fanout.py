"""The hub's fan-out in passes of `fanout.CHUNK` members per loop iteration
(made small here so that a few real clients span several iterations):
order per member, messages published during a pass, members leaving and
the hub closing while a pass is under way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

import asgiws
from asgiws.connection import shared_write
from asgiws.hub import fanout
from tests.integration.test_hub_compression import MESSAGES, Member

TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def members(
    hub: asgiws.Hub, count: int
) -> AsyncIterator[tuple[list[asgiws.WebSocketConnection], list[websockets.ClientConnection]]]:
    """`count` clients whose server sides joined "room", in that order."""
    joined: list[asgiws.WebSocketConnection] = []

    async def handler(websocket: asgiws.WebSocketConnection) -> None:
        await hub.join("room", websocket)
        joined.append(websocket)
        await websocket.send("joined")
        await websocket.wait_closed()

    async with asgiws.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for _ in range(count):
                client = await stack.enter_async_context(
                    websockets.connect(f"ws://127.0.0.1:{port}/")
                )
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == "joined"
                clients.append(client)
            yield joined, clients


async def test_every_member_gets_every_message_in_order_across_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "CHUNK", 3)
    async with asgiws.Hub() as hub, members(hub, 10) as (_, clients):
        sent = [f"m{i}" for i in range(20)] + [b"\x00binary"]
        for message in sent:  # all but the first published while a pass is under way
            await hub.publish("room", message)
        for client in clients:
            got = [await asyncio.wait_for(client.recv(), TIMEOUT) for _ in sent]
            assert got == sent
        assert hub.stats.delivered == len(sent) * len(clients)


async def test_a_member_that_leaves_during_a_pass_gets_no_more_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "CHUNK", 2)
    async with asgiws.Hub() as hub, members(hub, 6) as (joined, clients):
        await hub.publish("room", "news")  # the first chunk went out; four members to go
        await hub.leave("room", joined[-1])
        await joined[-1].send("direct")
        assert await asyncio.wait_for(clients[-1].recv(), TIMEOUT) == "direct"
        for client in clients[:-1]:
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "news"
        assert hub.stats.delivered == 5


async def test_closing_the_hub_during_a_pass_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "CHUNK", 2)
    hub = asgiws.Hub()
    await hub.start()
    async with members(hub, 4) as (joined, clients):
        await hub.publish("room", "news")
        # A channel larger than a chunk starts its pass on the next loop
        # iteration, writes the first chunk then and the second on the one after.
        await asyncio.sleep(0)
        await hub.close()  # members stay open but get no more messages
        for conn, client in zip(joined, clients, strict=True):
            await conn.send("direct")
            expected = ["news", "direct"] if client in clients[:2] else ["direct"]
            got = [await asyncio.wait_for(client.recv(), TIMEOUT) for _ in expected]
            assert got == expected


async def test_passes_keep_shared_compression_and_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages published while a pass is under way go out in the next pass:
    still compressed once per setting, RSV1 where the member shares it."""
    monkeypatch.setattr(fanout, "CHUNK", 2)
    shared = [Member(server_no_context_takeover=True) for _ in range(3)]
    others = [Member(), Member(off=True)]
    async with asgiws.Hub() as hub:

        async def handler(websocket: asgiws.WebSocketConnection) -> None:
            await hub.join("room", websocket)
            await websocket.send("joined")
            await websocket.wait_closed()

        async with asgiws.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            for member in shared + others:
                client = await member.connect(f"ws://127.0.0.1:{port}/")
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == "joined"
            for message in MESSAGES:
                await hub.publish("room", message)
            for member in shared + others:
                assert await member.receive(len(MESSAGES)) == MESSAGES
                assert member.client is not None
                await member.client.close()
    # (rsv1[0]: "joined", the connection's own send)
    for member in shared:
        assert member.rsv1[1:] == [True] * len(MESSAGES)
    assert others[0].rsv1[1:] == [False] * len(MESSAGES)  # context takeover: not shared
    assert hub.stats.compressed == len(MESSAGES)  # one setting in use
    assert hub.stats.delivered == len(MESSAGES) * 5


async def test_messages_published_together_reach_each_member_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A channel larger than a chunk starts its pass on the loop iteration
    after the publish, so what the app publishes in the same iteration (here
    three messages, no await between them that suspends) goes to each member
    in one write: one system call per member, not three."""
    monkeypatch.setattr(fanout, "CHUNK", 2)
    # What each member's transport was handed by the fan-out's shared write:
    # one system call each (write_each's; without the C accelerator a
    # stand-in that writes through each transport, as the fan-out then does).
    handed: dict[int, list[bytes]] = {}
    real_write_each = shared_write.write_each

    def recording_write_each(transports: list[Any], fds: list[int], data: bytes) -> None:
        for transport in transports:
            handed.setdefault(id(transport), []).append(data)
        if real_write_each is not None:
            real_write_each(transports, fds, data)
        else:
            for transport in transports:
                transport.write(data)

    monkeypatch.setattr(shared_write, "write_each", recording_write_each)
    async with asgiws.Hub() as hub, members(hub, 5) as (joined, clients):
        for text in ("a", "b", "c"):
            await hub.publish("room", text)
        for client in clients:
            got = [await asyncio.wait_for(client.recv(), TIMEOUT) for _ in range(3)]
            assert got == ["a", "b", "c"]
        three_frames = b"\x81\x01a\x81\x01b\x81\x01c"
        for conn in joined:
            assert handed[id(conn.transport)] == [three_frames]
