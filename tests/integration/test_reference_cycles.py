"""Finished connections are freed by reference counting alone.

Anything of ours left in a reference cycle waits for Python's cyclic garbage
collector, and a full collection over thousands of closed connections
stalls the event loop (100-300 ms was seen after a mass disconnect).  So
after HTTP requests, ASGI WebSocket sessions, `serve(handler)` connections
and `connect()` clients have finished, a collection must find none of our
objects.  (asyncio's own selector transports do form cycles; only objects
from asgiws modules are counted.)
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect as websockets_connect

import asgiws
from asgiws.types import ServerState
from tests.integration.test_asgi_websocket import echo
from tests.unit.http_helpers import TIMEOUT, serve_http

ROUNDS = 20


@pytest.fixture
def cycle_finder() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def our_garbage() -> Counter[str]:
    """Our objects that only the cyclic collector could free, by type."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    return Counter(
        f"{type(o).__module__}.{type(o).__qualname__}"
        for o in gc.garbage
        if type(o).__module__.startswith("asgiws")
    )


async def wait_all_closed(state: ServerState) -> None:
    await asyncio.wait_for(state.connections.wait_empty(), TIMEOUT)
    if state.tasks:
        await asyncio.wait(set(state.tasks), timeout=TIMEOUT)


@pytest.mark.usefixtures("cycle_finder")
async def test_http_requests_and_asgi_websockets_leave_no_cycles() -> None:
    async with serve_http(echo) as server:
        for _ in range(ROUNDS):
            async with httpx.AsyncClient() as client:
                assert (await client.get(server.url)).status_code == 500  # echo is WS-only
            async with websockets_connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
        await wait_all_closed(server.state)
        assert our_garbage() == Counter()


async def echo_handler(ws: asgiws.WebSocketConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.usefixtures("cycle_finder")
async def test_handler_api_and_client_connections_leave_no_cycles() -> None:
    async with asgiws.serve(echo_handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        for _ in range(ROUNDS):
            async with asgiws.connect(url) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
        server.close()
        await server.wait_closed()
    assert our_garbage() == Counter()
