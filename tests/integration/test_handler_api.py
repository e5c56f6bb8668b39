"""`asgiws.serve(handler)` and `asgiws.broadcast()`, driven by the third-party
`websockets` and `httpx` clients, the way the websockets guide uses them."""

from __future__ import annotations

import asyncio
import functools
import http
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK as PeerClosedOK
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

import asgiws
from asgiws import Headers, WebSocketConnection, broadcast, serve


def port_of(server: asgiws.WebSocketServer) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echo(websocket: WebSocketConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


@pytest.fixture
async def echo_server() -> AsyncIterator[asgiws.WebSocketServer]:
    async with serve(echo, "127.0.0.1", 0) as server:
        yield server


async def test_hello_echo_round_trip(echo_server: asgiws.WebSocketServer) -> None:
    async with connect(f"ws://127.0.0.1:{port_of(echo_server)}/") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
        await ws.send("")
        assert await ws.recv() == ""


async def test_await_serve_and_close_sends_going_away() -> None:
    server = await serve(echo, "127.0.0.1", 0)
    async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
        server.close()
        with pytest.raises(PeerClosedOK):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1001
    await asyncio.wait_for(server.wait_closed(), 5)


async def test_connection_attributes_seen_by_the_handler() -> None:
    seen: dict[str, Any] = {}

    async def handler(websocket: WebSocketConnection) -> None:
        seen["path"] = websocket.path
        seen["host"] = websocket.request_headers["Host"]
        seen["subprotocol"] = websocket.subprotocol
        seen["remote"] = websocket.remote_address
        seen["local"] = websocket.local_address
        seen["open"] = websocket.open
        seen["id"] = websocket.id
        waiter = await websocket.ping()
        seen["latency"] = await asyncio.wait_for(waiter, 5)
        seen["latency_attr"] = websocket.latency
        await websocket.send("done")

    async with serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as server:
        port = port_of(server)
        async with connect(
            f"ws://127.0.0.1:{port}/room?x=1", subprotocols=[Subprotocol("chat")]
        ) as ws:
            assert await ws.recv() == "done"
            local = ws.local_address
    assert seen["path"] == "/room?x=1"  # the request target as sent, as websockets gives it
    assert seen["host"] == f"127.0.0.1:{port}"
    assert seen["subprotocol"] == "chat"
    assert seen["remote"][:2] == local[:2]
    assert seen["local"][1] == port
    assert seen["open"] is True
    assert seen["latency"] >= 0 and seen["latency_attr"] == seen["latency"]
    assert len(str(seen["id"])) == 36


async def test_process_request_answers_health_checks_and_refuses_handshakes() -> None:
    def process_request(path: str, headers: Headers) -> Any:
        if path == "/healthz":
            return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"OK\n"
        if headers.get("Authorization") != "Bearer good":
            return http.HTTPStatus.UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}, b"no\n"
        return None

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        port = port_of(server)
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/healthz")
            plain = await client.get(f"http://127.0.0.1:{port}/other")
        assert (health.status_code, health.text) == (200, "OK\n")
        assert plain.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{port}/")
        assert refused.value.response.status_code == 401
        assert refused.value.response.headers["WWW-Authenticate"] == "Bearer"
        headers = {"Authorization": "Bearer good"}
        async with connect(f"ws://127.0.0.1:{port}/", additional_headers=headers) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"


async def test_async_process_request_is_awaited() -> None:
    async def process_request(path: str, headers: Headers) -> Any:
        await asyncio.sleep(0)
        return (http.HTTPStatus.FORBIDDEN, [], b"") if path == "/deny" else None

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{port_of(server)}/deny")
        assert refused.value.response.status_code == 403


async def test_plain_http_without_process_request_gets_426(
    echo_server: asgiws.WebSocketServer,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port_of(echo_server)}/")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"


async def test_select_subprotocol_and_server_preference() -> None:
    async with serve(echo, "127.0.0.1", 0, subprotocols=["b", "a"]) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        async with connect(url, subprotocols=[Subprotocol("a"), Subprotocol("b")]) as ws:
            assert ws.subprotocol == "b"  # the server's order wins
        async with connect(url, subprotocols=[Subprotocol("c")]) as ws:
            assert ws.subprotocol is None

    def pick(offered: Any, supported: Any) -> str | None:
        return offered[-1] if offered else None

    async with serve(echo, "127.0.0.1", 0, select_subprotocol=pick) as server:
        async with connect(
            f"ws://127.0.0.1:{port_of(server)}/", subprotocols=[Subprotocol("x"), Subprotocol("y")]
        ) as ws:
            assert ws.subprotocol == "y"


async def test_extra_headers_mapping_or_callable_and_server_header() -> None:
    async with serve(
        echo, "127.0.0.1", 0, extra_headers={"X-Static": "1"}, server_header="custom/1.0"
    ) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            assert ws.response is not None
            assert ws.response.headers["X-Static"] == "1"
            assert ws.response.headers["Server"] == "custom/1.0"

    def per_request(path: str, headers: Headers) -> list[tuple[str, str]]:
        return [("X-Path", path)]

    async with serve(echo, "127.0.0.1", 0, extra_headers=per_request, server_header=None) as srv:
        async with connect(f"ws://127.0.0.1:{port_of(srv)}/p") as ws:
            assert ws.response is not None
            assert ws.response.headers["X-Path"] == "/p"
            assert "Server" not in ws.response.headers


async def test_compression_none_declines_permessage_deflate() -> None:
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            await ws.send("x" * 10_000)
            assert await ws.recv() == "x" * 10_000


async def test_origins_option_refuses_other_origins() -> None:
    async with serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        async with connect(url, origin="https://good.example") as ws:  # type: ignore[arg-type]
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_max_size_closes_with_1009() -> None:
    async with serve(echo, "127.0.0.1", 0, max_size=1000) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=None) as ws:
            await ws.send("x" * 1001)
            with pytest.raises(Exception):  # noqa: B017 - any ConnectionClosed flavour
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009


async def test_handler_extra_arguments_with_partial_and_legacy_path_argument() -> None:
    async def greet(websocket: WebSocketConnection, greeting: str) -> None:
        await websocket.send(f"{greeting} {websocket.path}")

    async def legacy(websocket: WebSocketConnection, path: str) -> None:
        await websocket.send(f"legacy {path}")

    async with serve(functools.partial(greet, greeting="hi"), "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/a") as ws:
            assert await ws.recv() == "hi /a"
    async with serve(legacy, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/b") as ws:
            assert await ws.recv() == "legacy /b"


async def test_handler_error_closes_with_1011_and_handler_return_with_1000() -> None:
    async def broken(websocket: WebSocketConnection) -> None:
        await websocket.recv()
        raise RuntimeError("bug in handler")

    async def quick(websocket: WebSocketConnection) -> None:
        await websocket.send("bye")

    async with serve(broken, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            await ws.send("trigger")
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1011
    async with serve(quick, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            assert await ws.recv() == "bye"
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1000


async def test_client_close_code_and_reason_reach_the_handler() -> None:
    closed: asyncio.Future[tuple[int | None, str | None]] = (
        asyncio.get_running_loop().create_future()
    )

    async def handler(websocket: WebSocketConnection) -> None:
        await websocket.wait_closed()
        closed.set_result((websocket.close_code, websocket.close_reason))

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            await ws.close(4000, "custom reason")
        assert await asyncio.wait_for(closed, 5) == (4000, "custom reason")


async def test_recv_raises_connection_closed_ok_after_normal_close() -> None:
    result: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(websocket: WebSocketConnection) -> None:
        try:
            await websocket.recv()
        except asgiws.ConnectionClosed as exc:
            result.set_result(exc)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            await ws.close()
        exc = await asyncio.wait_for(result, 5)
    assert isinstance(exc, asgiws.ConnectionClosedOK)
    assert exc.code == 1000


# --- broadcast -----------------------------------------------------------------


async def subscribers(url: str, count: int) -> list[ClientConnection]:
    clients = [await connect(url) for _ in range(count)]
    for client in clients:
        assert await client.recv() == "subscribed"
    return clients


async def test_broadcast_reaches_every_open_connection() -> None:
    connected: set[WebSocketConnection] = set()
    one_left = asyncio.Event()

    async def handler(websocket: WebSocketConnection) -> None:
        connected.add(websocket)
        await websocket.send("subscribed")
        try:
            await websocket.wait_closed()
        finally:
            connected.discard(websocket)
            one_left.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        clients = await subscribers(f"ws://127.0.0.1:{port_of(server)}/", 5)
        assert broadcast(connected, "news") == 5
        assert broadcast(server.connections, b"\x01\x02") == 5
        for client in clients:
            assert await asyncio.wait_for(client.recv(), 5) == "news"
            assert await asyncio.wait_for(client.recv(), 5) == b"\x01\x02"
        await clients[0].close()
        await asyncio.wait_for(clients[0].wait_closed(), 5)
        # a closed connection is simply not counted
        await asyncio.wait_for(one_left.wait(), 5)
        assert len(connected) == 4
        assert broadcast(connected, "after") == 4
        for client in clients[1:]:
            assert await asyncio.wait_for(client.recv(), 5) == "after"
            await client.close()


async def test_broadcast_skips_a_slow_reader_without_blocking_the_others() -> None:
    connected: list[WebSocketConnection] = []
    both = asyncio.Event()

    async def handler(websocket: WebSocketConnection) -> None:
        connected.append(websocket)
        if len(connected) == 2:
            both.set()
        await websocket.send("subscribed")
        await websocket.wait_closed()

    big = "x" * 256 * 1024
    async with serve(handler, "127.0.0.1", 0, write_limit=64 * 1024, compression=None) as srv:
        port = port_of(srv)
        fast = (await subscribers(f"ws://127.0.0.1:{port}/", 1))[0]
        # A raw client that completes the handshake and then never reads.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await asyncio.wait_for(both.wait(), 5)
        sent_counts = []
        for _ in range(40):
            sent_counts.append(broadcast(connected, big))
            received = await asyncio.wait_for(fast.recv(), 5)
            assert received == big
        # The fast client got all 40; the slow one was skipped once its
        # buffer went above the write limit.
        assert sent_counts[0] == 2
        assert sent_counts[-1] == 1
        slow.close()
        await fast.close()


async def test_server_connections_lists_the_accepted_websockets_only() -> None:
    handled: list[WebSocketConnection] = []

    async def hold(ws: WebSocketConnection) -> None:
        handled.append(ws)
        await ws.wait_closed()

    async with serve(hold, "127.0.0.1", 0, compression=None) as server:
        port = port_of(server)
        async with httpx.AsyncClient() as client, connect(f"ws://127.0.0.1:{port}/") as ws:
            # An HTTP request on another connection at the same time is not listed.
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 426
            await ws.ping()
            assert server.connections == set(handled) and len(handled) == 1
            assert broadcast(server.connections, "to all") == 1
            assert await ws.recv() == "to all"
        await asyncio.wait_for(handled[0].wait_closed(), 5)
        await asyncio.sleep(0)
        assert server.connections == set()
