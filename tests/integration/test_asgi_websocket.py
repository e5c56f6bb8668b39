"""The ASGI WebSocket face end to end: HttpProtocol on a real socket, a raw
ASGI app, and the websockets client (or a raw socket where the test needs
bytes the client library would never send)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from asgiws.connection import WebSocketConnection
from asgiws.types import Receive, Scope, Send
from tests.unit.http_helpers import TIMEOUT, RunningServer, serve_http

App = Callable[[Scope, Receive, Send], Awaitable[None]]


def ws_url(server: RunningServer, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts and echoes every message with its own type until disconnect."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def handshake_request(path: str = "/ws", *extra: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: Opcode, data: bytes) -> bytes:
    return Frame(opcode, data).serialize(mask=True)


async def read_frames_until_eof(reader: asyncio.StreamReader) -> list[Frame]:
    """Every frame the server sends until it closes TCP (bounded by TIMEOUT)."""
    parser = Protocol(Side.CLIENT, max_size=None)
    data = await asyncio.wait_for(reader.read(), TIMEOUT)
    parser.receive_data(data)
    return [e for e in parser.events_received() if isinstance(e, Frame)]


# --- messages ------------------------------------------------------------------


async def test_echo_text_and_binary_including_empty_messages() -> None:
    async with serve_http(echo) as server, connect(ws_url(server)) as ws:
        messages: list[str | bytes] = ["hello", "", b"", b"\x00\x01", "é" * 10_000]
        for message in [*messages, os.urandom(100_000)]:
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == message


async def test_echo_without_compression() -> None:
    async with (
        serve_http(echo, ws_per_message_deflate=False) as server,
        connect(ws_url(server)) as ws,
    ):
        assert ws.response is not None
        assert "sec-websocket-extensions" not in ws.response.headers
        await ws.send("plain")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "plain"


async def test_permessage_deflate_is_negotiated() -> None:
    async with serve_http(echo) as server, connect(ws_url(server)) as ws:
        assert ws.response is not None
        assert ws.response.headers["sec-websocket-extensions"].startswith("permessage-deflate")
        await ws.send("x" * 50_000)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "x" * 50_000


async def test_scope() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close"})

    async with serve_http(app, root_path="/mount") as server:
        server.state.lifespan_state["shared"] = "value"
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(server, "/a%20b?x=1"), subprotocols=["p1", "p2"]):  # type: ignore[list-item]
                pass
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/mount/a b"
    assert scope["raw_path"] == b"/mount/a%20b"
    assert scope["root_path"] == "/mount"
    assert scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == ["p1", "p2"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ("127.0.0.1", server.port)
    assert (b"upgrade", b"websocket") in [(k, v.lower()) for k, v in scope["headers"]]
    assert scope["state"] == {"shared": "value"}
    assert "websocket.http.response" in scope["extensions"]
    assert isinstance(scope["extensions"]["asgiws.connection"], WebSocketConnection)


async def test_accept_with_subprotocol_and_headers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": "chat.v2",
                "headers": [(b"x-custom", b"yes"), (b"server", b"mine")],
            }
        )
        await send({"type": "websocket.close"})

    async with (
        serve_http(app) as server,
        connect(ws_url(server), subprotocols=["chat.v1", "chat.v2"]) as ws,  # type: ignore[list-item]
    ):
        assert ws.subprotocol == "chat.v2"
        assert ws.response is not None
        headers = ws.response.headers
        assert headers["x-custom"] == "yes"
        assert headers.get_all("server") == ["mine"]  # the app's wins over the default
        assert "date" in headers  # default headers are sent on the 101
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), TIMEOUT)


# --- refusals ------------------------------------------------------------------


async def test_close_before_accept_is_http_403() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    async with serve_http(app) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server)):
                pass
    assert info.value.response.status_code == 403


async def test_denial_with_a_custom_http_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"token"})

    async with serve_http(app) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server)):
                pass
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.body == b"no token"


async def test_app_error_before_accept_is_http_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("boom")

    async with serve_http(app) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server)):
                pass
    assert info.value.response.status_code == 500


@pytest.mark.parametrize(
    "accept",
    [
        {"type": "websocket.accept", "subprotocol": "chat\r\nset-cookie: stolen=1"},
        {"type": "websocket.accept", "headers": [(b"x-a", b"1\r\nset-cookie: stolen=1")]},
    ],
    ids=["subprotocol", "header"],
)
async def test_accept_that_would_inject_a_header_is_http_500(accept: dict[str, Any]) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send(accept)
        except RuntimeError as exc:
            errors.append(exc)
            raise

    async with serve_http(app) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server), subprotocols=["chat"]):  # type: ignore[list-item]
                pass
    assert info.value.response.status_code == 500
    assert "set-cookie" not in info.value.response.headers
    assert errors and "Invalid HTTP header value" in str(errors[0])


async def test_app_returning_without_accept_is_http_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async with serve_http(app) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server)):
                pass
    assert info.value.response.status_code == 500


async def test_disallowed_origin_is_http_403() -> None:
    async with serve_http(echo, ws_origins=["https://good.example"]) as server:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server), origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
        async with connect(ws_url(server), origin="https://good.example") as ws:  # type: ignore[arg-type]
            await ws.send("ok")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ok"


async def test_bad_version_is_http_426_with_the_supported_version() -> None:
    async with serve_http(echo) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(handshake_request().replace(b"Version: 13", b"Version: 8"))
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
        writer.close()
    assert data.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nsec-websocket-version: 13\r\n" in data.lower()


async def test_app_that_never_accepts_is_dropped_after_the_handshake_timeout() -> None:
    never = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await never.wait()

    async with serve_http(app, ws_handshake_timeout=0.1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(handshake_request())
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()


async def test_receive_while_another_task_accepts_waits_for_the_accept() -> None:
    received: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        # A dispatch loop that calls receive() before its handler accepted.
        reader = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        await send({"type": "websocket.accept"})
        received.append(await reader)
        await send({"type": "websocket.close"})

    async with serve_http(app) as server, connect(ws_url(server)) as ws:
        await ws.send("after accept")
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert received == [{"type": "websocket.receive", "text": "after accept"}]


async def test_receive_after_denial_is_a_disconnect() -> None:
    messages: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close"})
        messages.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "never"})
        except OSError as exc:
            messages.append(exc)

    async with serve_http(app) as server:
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(server)):
                pass
        await asyncio.wait_for(_wait_tasks(server), TIMEOUT)
    assert messages[0]["type"] == "websocket.disconnect"
    assert isinstance(messages[1], OSError)


# --- closing -------------------------------------------------------------------


async def test_app_close_code_and_reason_reach_the_client() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000, "reason": "bye now"})

    async with serve_http(app) as server, connect(ws_url(server)) as ws:
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (4000, "bye now")


async def test_client_close_code_and_reason_reach_the_app() -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(dict(await receive()))

    async with serve_http(app) as server:
        async with connect(ws_url(server)) as ws:
            await ws.close(4001, "client done")
        await asyncio.wait_for(_wait_tasks(server), TIMEOUT)
    assert disconnects == [{"type": "websocket.disconnect", "code": 4001, "reason": "client done"}]


async def test_app_returning_after_accept_closes_with_1000() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "only"})

    async with serve_http(app) as server, connect(ws_url(server)) as ws:
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "only"
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1000


async def test_app_error_after_accept_closes_with_1011() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async with serve_http(app) as server, connect(ws_url(server)) as ws:
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1011


async def test_oversized_message_closes_with_1009() -> None:
    disconnects: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async with serve_http(app, ws_max_size=1024) as server:
        async with connect(ws_url(server), compression=None) as ws:
            await ws.send(b"x" * 2048)
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert ws.close_code == 1009
        await asyncio.wait_for(_wait_tasks(server), TIMEOUT)
    # The code that ended the connection, though the client's echo may not
    # have been read before the server closed TCP.
    assert disconnects[0]["type"] == "websocket.disconnect"
    assert disconnects[0]["code"] == 1009


async def test_send_after_disconnect_raises_oserror() -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            raised.append(exc)

    async with serve_http(app) as server:
        async with connect(ws_url(server)):
            pass
        await asyncio.wait_for(_wait_tasks(server), TIMEOUT)
    assert len(raised) == 1


async def test_shutdown_closes_open_websockets_with_1012() -> None:
    accepted = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await receive()

    async with serve_http(app) as server, connect(ws_url(server)) as ws:
        await asyncio.wait_for(accepted.wait(), TIMEOUT)
        connections = [c for c in server.state.connections if isinstance(c, WebSocketConnection)]
        assert len(connections) == 1
        connections[0].shutdown()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1012
        await asyncio.wait_for(connections[0].wait_closed(), TIMEOUT)
        assert connections[0] not in server.state.connections


# --- bytes on the wire ---------------------------------------------------------


async def test_first_frame_in_the_same_packet_as_the_handshake() -> None:
    async with serve_http(echo) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # One write, so one packet on loopback: the frame rides behind the head.
        writer.write(handshake_request() + client_frame(Opcode.TEXT, b"early"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101 ")
        echoed = await asyncio.wait_for(reader.readexactly(7), TIMEOUT)
        writer.write(client_frame(Opcode.CLOSE, (1000).to_bytes(2, "big")))
        frames = await read_frames_until_eof(reader)
        writer.close()
    assert echoed == b"\x81\x05early"
    assert [(f.opcode, bytes(f.data)) for f in frames] == [
        (Opcode.CLOSE, (1000).to_bytes(2, "big"))
    ]


async def test_a_client_that_never_answers_pings_is_closed_with_1011() -> None:
    async with serve_http(
        echo, ws_ping_interval=0.05, ws_ping_timeout=0.1, ws_close_timeout=1
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(handshake_request())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101 ")
        frames = await read_frames_until_eof(reader)  # the server hangs up on us
        writer.close()
    assert frames[0].opcode is Opcode.PING
    assert frames[-1].opcode is Opcode.CLOSE
    assert frames[-1].data[:2] == (1011).to_bytes(2, "big")


async def test_max_queue_pauses_reading_until_the_app_consumes() -> None:
    conns: list[WebSocketConnection] = []
    received: list[Any] = []
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        conns.append(scope["extensions"]["asgiws.connection"])
        await release.wait()
        for _ in range(50):
            received.append((await receive())["text"])

    async with (
        serve_http(app, ws_max_queue=4) as server,
        connect(ws_url(server), compression=None) as ws,
    ):
        for i in range(50):
            await ws.send(str(i))
        await _until(lambda: bool(conns) and conns[0].reading_paused)
        conn = conns[0]
        assert conn.transport is not None and not conn.transport.is_reading()
        # While the app does not read, the server does not read either: a
        # ping sent now is not answered.
        pong = await ws.ping()
        done, _ = await asyncio.wait({pong}, timeout=0.2)
        assert not done
        release.set()
        await asyncio.wait_for(pong, TIMEOUT)  # reading resumed
        await asyncio.wait_for(_wait_tasks(server), TIMEOUT)
    assert received == [str(i) for i in range(50)]  # nothing dropped, in order


async def test_connection_object_pings_the_client() -> None:
    latencies: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        conn: WebSocketConnection = scope["extensions"]["asgiws.connection"]
        waiter = await conn.ping()
        latencies.append(await asyncio.wait_for(waiter, TIMEOUT))
        await send({"type": "websocket.close"})

    async with serve_http(app) as server, connect(ws_url(server)) as ws:
        with pytest.raises(ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert len(latencies) == 1 and latencies[0] >= 0


# --- helpers -------------------------------------------------------------------


async def _wait_tasks(server: RunningServer) -> None:
    """Until every app task of the server has finished."""
    while server.state.tasks:
        await asyncio.wait(set(server.state.tasks))


async def _until(condition: Callable[[], bool]) -> None:
    """Poll a condition that depends on the other end of a socket (bounded)."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 5 s")
