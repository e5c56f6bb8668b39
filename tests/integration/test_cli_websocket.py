"""The real `asgiws` process, HTTP and WebSocket on one port, driven by the
third-party `websockets` and `httpx` clients.

Every test runs twice: on the fast stack (httptools + uvloop) and on the
pure one (h11 + asyncio), so both stay fully tested.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.typing import Origin

import asgiws
from tests.conftest import ServerProcess, StartServer
from tests.silent_client import open_silent_client, read_frames_until_close

STACKS = {
    "fast": ("--http", "httptools", "--loop", "uvloop"),
    "pure": ("--http", "h11", "--loop", "asyncio"),
}


@pytest.fixture(params=sorted(STACKS))
def stack(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return STACKS[request.param]


@pytest.fixture
def server(run_server: StartServer, stack: tuple[str, ...]) -> ServerProcess:
    return run_server("tests.apps:protocol", *stack, "--ws-max-size", "4096")


async def test_http_and_websocket_share_one_port_and_keep_alive(server: ServerProcess) -> None:
    async with httpx.AsyncClient() as client:
        first = await client.get(f"{server.url}/")
        second = await client.get(f"{server.url}/again")
    assert (first.status_code, first.text) == (200, "ok")
    assert second.status_code == 200
    assert first.headers["server"] == "asgiws" and "date" in first.headers
    async with connect(f"{server.ws_url}/echo") as ws:
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send(b"\x00bytes")
        assert await ws.recv() == b"\x00bytes"


async def test_keep_alive_connection_serves_requests_then_upgrades(
    server: ServerProcess,
) -> None:
    # One TCP connection: a plain request, then the WebSocket handshake on it.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert await reader.readexactly(2) == b"ok"
    writer.write(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        # the first frame in the same packet: masked text "hi"
        + b"\x81\x82\x00\x00\x00\x00hi"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    assert await reader.readexactly(4) == b"\x81\x02hi"
    writer.close()


async def test_subprotocol_and_accept_headers(server: ServerProcess) -> None:
    async with connect(f"{server.ws_url}/subprotocol", subprotocols=["chat", "v2"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat"
        assert ws.response is not None
        assert ws.response.headers["x-chosen-by"] == "app"


async def test_denial_with_a_custom_http_response(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws_url}/refuse")
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "x"
    assert response.body == b"no entry"


async def test_server_close_code_and_reason_reach_the_client(server: ServerProcess) -> None:
    async with connect(f"{server.ws_url}/close/4001") as ws:
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001
        assert ws.close_reason == "by server"


async def test_client_close_code_and_reason_reach_the_app(server: ServerProcess) -> None:
    async with connect(f"{server.ws_url}/echo") as ws:
        await ws.close(4002, "by client")
    async with httpx.AsyncClient() as client:
        # The app answers once its receive() has returned the disconnect.
        seen = (await client.get(f"{server.url}/last-disconnect")).json()
    assert seen == {"code": 4002, "reason": "by client"}


async def test_oversized_message_closes_with_1009_and_server_keeps_serving(
    server: ServerProcess,
) -> None:
    async with connect(f"{server.ws_url}/echo", max_size=None) as ws:
        await ws.send("x" * 4097)
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
    async with connect(f"{server.ws_url}/echo") as ws:
        await ws.send("x" * 4096)
        assert await ws.recv() == "x" * 4096


async def test_bad_handshakes_get_http_errors(server: ServerProcess) -> None:
    async with httpx.AsyncClient() as client:
        no_version = await client.get(
            f"{server.url}/echo",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )
        bad_key = await client.get(
            f"{server.url}/echo",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "short",
            },
        )
    assert no_version.status_code == 426
    assert no_version.headers["sec-websocket-version"] == "13"
    assert bad_key.status_code == 400


async def test_ping_timeout_closes_a_silent_client(
    run_server: StartServer, stack: tuple[str, ...]
) -> None:
    server = run_server(
        "tests.apps:protocol", *stack, "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.3"
    )
    silent, leftover = await asyncio.to_thread(open_silent_client, server.port, "/echo")
    with silent:
        opcodes, code = await asyncio.to_thread(read_frames_until_close, silent, leftover)
    assert opcodes[0] == 0x9  # a ping came first
    assert code == 1011  # and the peer that never answered it was closed


async def test_crashing_app_gets_500_and_server_keeps_serving(
    run_server: StartServer, stack: tuple[str, ...]
) -> None:
    server = run_server("tests.apps:crash", *stack)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.url}/")
    assert response.status_code == 500
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws_url}/")
    assert refused.value.response.status_code == 500
    # The line is printed by the server process: wait for it (bounded).
    await asyncio.to_thread(server.wait_for_log, "Exception in ASGI application")
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/")).status_code == 500


# --- --ws-origins: a spelling for "no Origin header" -----------------------------------


async def test_ws_origins_none_admits_clients_that_send_no_origin(
    run_server: StartServer, stack: tuple[str, ...]
) -> None:
    server = run_server(
        "tests.apps:echo", *stack, "--ws-origins", "https://good.example", "--ws-origins", "none"
    )
    # The websockets client sends no Origin header unless told to.
    async with connect(server.ws_url, open_timeout=10) as ws:
        await ws.send("no origin")
        assert await asyncio.wait_for(ws.recv(), 10) == "no origin"
    async with connect(server.ws_url, origin=Origin("https://good.example"), open_timeout=10) as ws:
        await ws.send("good")
        assert await asyncio.wait_for(ws.recv(), 10) == "good"
    # "none" is not the literal Origin "null" that opaque (sandboxed, file://) pages send.
    for origin in ("null", "none", "https://evil.example"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws_url, origin=Origin(origin), open_timeout=10)
        assert refused.value.response.status_code == 403


async def test_ws_origins_without_none_refuses_clients_that_send_no_origin(
    run_server: StartServer,
) -> None:
    server = run_server("tests.apps:echo", "--ws-origins", "https://good.example")
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.ws_url, open_timeout=10)
    assert refused.value.response.status_code == 403


# --- --limit-concurrency: one rule for HTTP and WebSocket --------------------------------


async def test_limit_concurrency_answers_http_and_websocket_alike_with_503(
    run_server: StartServer, stack: tuple[str, ...]
) -> None:
    server = run_server("tests.apps:echo", *stack, "--limit-concurrency", "1")
    async with connect(server.ws_url, open_timeout=10) as first:
        await first.send("one")
        assert await asyncio.wait_for(first.recv(), 10) == "one"
        # At the limit: a second WebSocket is refused as an HTTP request is.
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws_url + "/second", open_timeout=10)
        assert refused.value.response.status_code == 503
        server.wait_for_log(r'"WebSocket /second" 503 Service Unavailable$')
        async with httpx.AsyncClient() as client:
            assert (await client.get(server.url + "/")).status_code == 503
        # The WebSocket within the limit is unaffected.
        await first.send("still")
        assert await asyncio.wait_for(first.recv(), 10) == "still"


async def test_serve_origins_none_admits_clients_that_send_no_origin() -> None:
    """The websockets API spells it as websockets does: None in `origins`."""

    async def greet(ws: asgiws.WebSocketConnection) -> None:
        await ws.send("hi")

    async with asgiws.serve(greet, "127.0.0.1", 0, origins=[None]) as served:
        port = served.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", open_timeout=10) as ws:
            assert await asyncio.wait_for(ws.recv(), 10) == "hi"
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{port}", origin=Origin("null"), open_timeout=10)
        assert refused.value.response.status_code == 403
