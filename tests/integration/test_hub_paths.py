"""The same Starlette route on the hub gives the same messages under asgiws
(the fast path: the connection from the scope, frames written without
awaiting) and under uvicorn (the plain path: ASGI `send` per member)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import REPO_ROOT, StartServer
from tests.integration.test_hub_redis import APP, TIMEOUT, receive_until, wait_until

MESSAGES: list[tuple[bytes, bool]] = [
    (b"plain text", False),
    (b"", False),
    ("ünïcødé ✓ 𝄞".encode(), False),
    (b"\x00\xff\x80", True),
    (b"", True),
    (b"x" * 100_000, False),
    (b"end", False),
]


def expected() -> list[str | bytes]:
    return [body if binary else body.decode() for body, binary in MESSAGES]


@pytest.fixture
def uvicorn_url() -> Iterator[str]:
    """The test app under uvicorn, on a socket bound here (no port race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", APP, "--fd", str(sock.fileno()),
         "--log-level", "warning", "--ws", "websockets-sansio"],
        cwd=REPO_ROOT, pass_fds=(sock.fileno(),), env=dict(os.environ, HUB_URL="memory://"),
    )
    sock.close()
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/status").is_success:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(TIMEOUT)


async def messages_through(base: str) -> list[str | bytes]:
    ws_base = "ws" + base[len("http"):]
    async with httpx.AsyncClient() as http, websockets.connect(
        f"{ws_base}/ws/same", max_size=None
    ) as client:

        async def joined() -> bool:
            response = await http.get(f"{base}/status", params={"channel": "same"})
            return bool(response.json()["members"] == 1)

        await wait_until(joined, f"the client joined at {base}")
        for body, binary in MESSAGES:
            params = {"binary": "1"} if binary else {}
            response = await http.post(f"{base}/publish/same", content=body, params=params)
            assert response.status_code == 200, response.text
        return await receive_until(client, "end")


async def test_same_route_same_messages_under_asgiws_and_uvicorn(
    run_server: StartServer, uvicorn_url: str
) -> None:
    fast = await messages_through(run_server(APP).url)
    plain = await messages_through(uvicorn_url)
    assert fast == expected()
    assert plain == fast


async def test_a_member_whose_socket_closed_leaves_by_itself(run_server: StartServer) -> None:
    """The route never calls leave(): when the client's TCP connection dies,
    the hub forgets the member by itself."""
    server = run_server(APP)
    async with httpx.AsyncClient() as http:
        client = await websockets.connect(f"{server.ws_url}/ws/gone?leave=0")

        async def members(n: int) -> bool:
            response = await http.get(f"{server.url}/status", params={"channel": "gone"})
            return bool(response.json()["members"] == n)

        await wait_until(lambda: members(1), "the client joined")
        client.transport.abort()
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        await wait_until(lambda: members(0), "the closed member left")
