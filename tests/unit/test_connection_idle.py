"""What an idle WebSocketConnection keeps, and the message hand-over that lets
it keep little: a message that arrives while recv() waits goes straight to it."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest
from websockets.frames import Opcode

from asgiws.connection import WebSocketConnection
from asgiws.exceptions import ConnectionClosedError
from tests.unit.test_connection import FakeTransport, Peer, make_connection

IDLE_CONNECTIONS = 200


async def test_a_message_handed_to_a_waiting_recv_is_answered_before_the_owed_close() -> None:
    # The message goes to the waiting recv() without being queued; the bad
    # frame behind it in the same read must still wait for the app's reply.
    conn, transport, peer = make_connection()
    waiting = asyncio.create_task(conn.recv())
    await asyncio.sleep(0)  # recv() waits
    conn.data_received(b"\x81\x85\x00\x00\x00\x00hello" + b"\x83\x80\x00\x00\x00\x00")
    assert peer.frames() == []  # the app has not seen "hello" yet
    assert await waiting == "hello"
    await conn.send("hello")
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(conn.recv(), 1)
    assert [f.opcode for f in peer.frames()] == [Opcode.TEXT, Opcode.CLOSE]
    transport.abort()


async def test_messages_keep_their_order_across_the_hand_over_and_the_queue() -> None:
    conn, _, _ = make_connection()
    waiting = asyncio.create_task(conn.recv())
    await asyncio.sleep(0)
    conn.data_received(b"".join(b"\x81\x81\x00\x00\x00\x00" + c for c in (b"a", b"b", b"c")))
    assert [await waiting, await conn.recv(), await conn.recv()] == ["a", "b", "c"]


async def test_idle_connections_hold_no_message_queue() -> None:
    """After a burst of messages, a connection whose app waits in recv()
    keeps no queue: thousands of idle connections must stay small."""

    async def one() -> tuple[WebSocketConnection, FakeTransport, Peer, asyncio.Task[object]]:
        conn, transport, peer = make_connection()
        conn.data_received(b"\x82\x81\x00\x00\x00\x00x" * 3)  # a burst: queued
        for _ in range(3):
            await conn.recv()
        waiting = asyncio.create_task(conn.recv())
        await asyncio.sleep(0)
        return conn, transport, peer, waiting

    await one()  # imports and first-use caches outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [await one() for _ in range(IDLE_CONNECTIONS)]
        gc.collect()
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / IDLE_CONNECTIONS
    finally:
        tracemalloc.stop()
    for _, transport, _, waiting in kept:
        waiting.cancel()
        transport.abort()
    # Measured 4,030 bytes (4,830 while every inbox kept its 760-byte deque):
    # the engine, the parts, the fake transport, the peer's own protocol and
    # the waiting task.
    assert per_connection < 4400, per_connection
