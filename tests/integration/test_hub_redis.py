"""The hub across two asgiws processes through a real redis-server.

Documented behaviour under test: while Redis is down, `publish()` raises
`HubUnavailable` (the app answers 503) and those messages are lost; once
both processes have reconnected and resubscribed, nothing is lost, nothing
is duplicated, and order is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RedisServer, ServerProcess, StartServer

APP = "tests.integration.test_hub_app:app"
TIMEOUT = 10.0


async def status(
    http: httpx.AsyncClient, server: ServerProcess, channel: str = ""
) -> dict[str, Any]:
    response = await http.get(f"{server.url}/status", params={"channel": channel})
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = TIMEOUT
) -> None:
    """Poll an async condition (bounded); fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


async def receive_until(
    client: websockets.ClientConnection, last: str | bytes
) -> list[str | bytes]:
    received: list[str | bytes] = []
    while True:
        message = await asyncio.wait_for(client.recv(), TIMEOUT)
        received.append(message)
        if message == last:
            return received


@pytest.fixture
def two_servers(
    run_server: StartServer, redis_server: RedisServer
) -> tuple[ServerProcess, ServerProcess]:
    env = {"HUB_URL": redis_server.url}
    return run_server(APP, env=env), run_server(APP, env=env)


async def test_published_in_one_process_received_by_a_client_of_the_other(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_servers
    async with httpx.AsyncClient() as http, websockets.connect(f"{b.ws_url}/ws/news") as client:

        async def joined() -> bool:
            return bool((await status(http, b, "news"))["members"] == 1)

        await wait_until(joined, "the client joined 'news' on B")
        for body, params in (("hello from A", {}), ("ünï ✓", {}), ("\x00\xff", {"binary": "1"})):
            response = await http.post(
                f"{a.url}/publish/news", content=body.encode(), params=params
            )
            assert response.status_code == 200, response.text
        assert await receive_until(client, "\x00\xff".encode()) == [
            "hello from A", "ünï ✓", "\x00\xff".encode(),
        ]
        # One copy per process: B delivered each message once.
        assert (await status(http, b))["stats"]["delivered"] == 3


async def test_redis_restart_loses_only_what_was_published_while_it_was_down(
    two_servers: tuple[ServerProcess, ServerProcess], redis_server: RedisServer
) -> None:
    a, b = two_servers
    async with httpx.AsyncClient() as http, websockets.connect(f"{b.ws_url}/ws/feed") as client:

        async def joined() -> bool:
            return bool((await status(http, b, "feed"))["members"] == 1)

        await wait_until(joined, "the client joined 'feed' on B")
        for i in range(5):
            assert (await http.post(f"{a.url}/publish/feed", content=f"before {i}")).is_success
        assert await receive_until(client, "before 4") == [f"before {i}" for i in range(5)]

        redis_server.kill()

        async def a_down() -> bool:
            return not (await status(http, a))["connected"]

        await wait_until(a_down, "server A noticed that Redis is gone")
        refused = 0
        for i in range(5):
            response = await http.post(f"{a.url}/publish/feed", content=f"while down {i}")
            if response.status_code == 503:
                refused += 1
                assert "unreachable" in response.text or "failed" in response.text
        # Documented: every publish while Redis is down is refused, none buffered.
        assert refused == 5

        redis_server.start()

        async def both_up() -> bool:
            return all([(await status(http, s))["connected"] for s in (a, b)])

        await wait_until(both_up, "both servers reconnected to Redis")
        sent = [f"after {i}" for i in range(50)]
        for text in sent:
            assert (await http.post(f"{a.url}/publish/feed", content=text)).is_success
        # Nothing lost after the restart, nothing duplicated, in order: the
        # messages refused while Redis was down never arrive.
        assert await receive_until(client, sent[-1]) == sent
    assert "hub lost Redis" in a.logs()
