"""Slow subscribers: one client that never reads neither delays the others
nor grows the server's memory; the `drop` policy skips it (counted, and
reported to the observer), the `close` policy closes it with 1013."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

import asgiws
from asgiws.observer import BroadcastSkipped, BroadcastSkipReason, Observer
from asgiws.types import Receive, Scope, Send
from tests.conftest import ServerProcess, StartServer
from tests.integration.test_hub_redis import APP, TIMEOUT, wait_until
from tests.unit.http_helpers import serve_http

FAST_CLIENTS = 100
NEWS = 100
FILLER = b"f" * 65536
FILLER_COUNT = 320  # 20 MiB for the slow client alone: far more than kernel buffers hold


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def never_reading_client(url: str) -> ClientConnection:
    """A client that stops reading at once: a tiny receive buffer, and the
    websockets library stops reading the socket when its queue is full."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return await websockets.connect(url, sock=sock, max_queue=1, max_size=None)


async def status(http: httpx.AsyncClient, server: ServerProcess) -> dict[str, Any]:
    result: dict[str, Any] = (await http.get(f"{server.url}/status")).json()
    return result


async def fill(http: httpx.AsyncClient, server: ServerProcess, count: int) -> None:
    for _ in range(count):
        assert (await http.post(f"{server.url}/publish/filler", content=FILLER)).is_success


async def test_a_client_that_never_reads_does_not_delay_100_fast_ones(
    run_server: StartServer,
) -> None:
    # An explicit bound (the default is the connection's write limit, the
    # same 64 KiB, enforced through pause_writing: the close test covers it).
    server = run_server(APP, "--ws-ping-interval", "0", env={"HUB_MAX_QUEUED": "65536"})
    arrivals: dict[int, list[float]] = {i: [] for i in range(NEWS)}

    async def read(client: ClientConnection) -> None:
        expected = 0
        async for message in client:
            assert message == f"news {expected}"
            arrivals[expected].append(time.monotonic())
            expected += 1
            if expected == NEWS:
                return

    async with httpx.AsyncClient() as http:
        fast = [await websockets.connect(f"{server.ws_url}/ws/news") for _ in range(FAST_CLIENTS)]
        slow = await never_reading_client(f"{server.ws_url}/ws/news?also=filler")
        readers = [asyncio.ensure_future(read(client)) for client in fast]

        async def all_joined() -> bool:
            response = await http.get(f"{server.url}/status", params={"channel": "news"})
            return bool(response.json()["members"] == FAST_CLIENTS + 1)

        await wait_until(all_joined, "every client joined")
        before = rss_kib(server.process.pid)
        await fill(http, server, FILLER_COUNT)
        assert (await status(http, server))["stats"]["dropped"] > 0  # the bound was reached

        sent_at = []
        for i in range(NEWS):
            sent_at.append(time.monotonic())
            assert (await http.post(f"{server.url}/publish/news", content=f"news {i}")).is_success
        await asyncio.wait_for(asyncio.gather(*readers), TIMEOUT)
        grown = rss_kib(server.process.pid) - before
        stats = (await status(http, server))["stats"]

        # Every fast client got every message, each within a second of its publish.
        worst = max(max(arrivals[i]) - sent_at[i] for i in range(NEWS))
        assert all(len(arrivals[i]) == FAST_CLIENTS for i in range(NEWS))
        assert worst < 1.0, f"a fast client waited {worst:.3f} s"
        # The slow one missed them all (drop policy), and the 20 MiB sent its
        # way stayed out of the server's memory: at most the 64 KiB bound (plus
        # allocator noise) is held for it.
        assert stats["dropped"] >= NEWS
        assert grown < 8 * 1024, f"server RSS grew by {grown} KiB"
        slow.transport.abort()
        for client in fast:
            await client.close()


async def test_close_policy_closes_a_slow_client_with_1013(run_server: StartServer) -> None:
    server = run_server(APP, "--ws-ping-interval", "0", env={"HUB_SLOW": "close"})
    async with httpx.AsyncClient() as http:
        fast = await websockets.connect(f"{server.ws_url}/ws/filler")
        slow = await never_reading_client(f"{server.ws_url}/ws/filler")

        async def both_joined() -> bool:
            response = await http.get(f"{server.url}/status", params={"channel": "filler"})
            return bool(response.json()["members"] == 2)

        await wait_until(both_joined, "both clients joined")
        for _ in range(FILLER_COUNT):
            assert (await http.post(f"{server.url}/publish/filler", content=FILLER)).is_success
            assert await asyncio.wait_for(fast.recv(), TIMEOUT) == FILLER.decode()
            if (await status(http, server))["stats"]["closed_slow"]:
                break
        assert (await status(http, server))["stats"]["closed_slow"] == 1
        # The slow client, reading at last, finds the close frame behind its backlog.
        try:
            while True:
                await asyncio.wait_for(slow.recv(), TIMEOUT)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1013
            assert closed.rcvd.reason == "slow subscriber: more than 65536 bytes queued"
        # The fast client stays a member and keeps getting messages.
        assert (await http.post(f"{server.url}/publish/filler", content=b"still here")).is_success
        assert await asyncio.wait_for(fast.recv(), TIMEOUT) == "still here"
        await fast.close()


class SkipRecorder(Observer):
    def __init__(self) -> None:
        self.skips: list[BroadcastSkipped] = []

    def broadcast_skipped(self, event: BroadcastSkipped) -> None:
        self.skips.append(event)


async def test_drops_reach_the_observer() -> None:
    """A raw ASGI app joins the connection from the scope's extension; the
    hub's drops are the server's `broadcast_skipped` reports."""
    observer = SkipRecorder()
    async with asgiws.Hub(max_queued=0) as hub:

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await hub.join("big", scope["extensions"][asgiws.CONNECTION_EXTENSION])
            while (await receive())["type"] != "websocket.disconnect":
                pass

        async with serve_http(app, observer=observer, access_log=False) as server:
            slow = await never_reading_client(f"ws://127.0.0.1:{server.port}/")
            await wait_until(_async(lambda: hub.members("big") == 1), "joined")
            big = b"x" * 2**20
            for _ in range(40):
                await hub.publish("big", big)
                if observer.skips:
                    break
                await asyncio.sleep(0)  # let the transport try to write
            assert hub.stats.dropped == len(observer.skips) > 0
            assert {event.reason for event in observer.skips} == {BroadcastSkipReason.SLOW_READER}
            assert observer.skips[0].client is not None
            slow.transport.abort()


def _async(check: Any) -> Any:
    async def wrapped() -> bool:
        return bool(check())

    return wrapped
