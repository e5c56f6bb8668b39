"""What a user coming from websockets 10 relies on, one section per wall of
the switch: the query string, logging, protocol classes, extensions,
sockets, options with websockets' meaning, the exception tree, Basic Auth.
Peers are the third-party `websockets` library and `httpx` where the
behaviour is on the wire."""

from __future__ import annotations

import asyncio
import base64
import http
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as peer_connect
from websockets.asyncio.client import unix_connect as peer_unix_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as peer_serve
from websockets.exceptions import InvalidStatus as PeerInvalidStatus
from websockets.typing import Subprotocol

import asgiws
from asgiws import Headers
from asgiws.exceptions import (
    AbortHandshake,
    ConnectionClosedError,
    InvalidHandshake,
    InvalidState,
    InvalidStatusCode,
    InvalidURI,
    PayloadTooBig,
    SecurityError,
    WebSocketException,
)

TIMEOUT = 5.0


def port_of(server: asgiws.WebSocketServer) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echo(websocket: asgiws.WebSocketServerProtocol) -> None:
    async for message in websocket:
        await websocket.send(message)


# --- 1. the query string ---------------------------------------------------------------


async def test_handler_and_process_request_see_the_request_target_as_sent() -> None:
    seen: list[tuple[str, str]] = []

    def process_request(path: str, headers: Headers) -> None:
        seen.append(("process_request", path))

    async def handler(websocket: asgiws.WebSocketServerProtocol, path: str) -> None:
        seen.append(("path argument", path))
        seen.append(("websocket.path", websocket.path))

    target = "/chat?token=a%20b&room=caf%C3%A9"
    async with asgiws.serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        async with peer_connect(f"ws://127.0.0.1:{port_of(server)}{target}") as ws:
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
    assert seen == [
        ("process_request", target),
        ("path argument", target),
        ("websocket.path", target),
    ]


# --- 2. logging ----------------------------------------------------------------------------


async def test_info_lines_and_debug_frames_carry_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asgiws.server")
    async with asgiws.serve(echo, "127.0.0.1", 0) as server:
        port = port_of(server)
        async with peer_connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
    records = [r for r in caplog.records if r.name == "asgiws.server"]
    messages = [r.getMessage() for r in records]
    assert f"server listening on 127.0.0.1:{port}" in messages
    opened = next(r for r in records if r.getMessage() == "connection open")
    closed = next(r for r in records if r.getMessage().startswith("connection closed: "))
    assert opened.levelno == closed.levelno == logging.INFO
    websocket = opened.websocket  # type: ignore[attr-defined]
    assert isinstance(websocket, asgiws.WebSocketServerProtocol)
    assert closed.websocket is websocket  # type: ignore[attr-defined]
    frames = [r for r in records if r.levelno == logging.DEBUG]
    assert any(r.getMessage().startswith("< TEXT 'hi'") for r in frames)
    assert any(r.getMessage().startswith("> TEXT 'hi'") for r in frames)
    assert all(r.websocket is websocket for r in frames)  # type: ignore[attr-defined]
    assert "server closing" in messages and "server closed" in messages


class IdAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The websockets logging guide's adapter: the connection id and the
    X-Forwarded-For header in front of each line."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        try:
            websocket = kwargs["extra"]["websocket"]
        except KeyError:
            return msg, kwargs
        xff = websocket.request_headers.get("X-Forwarded-For")
        return f"{websocket.id} {xff} {msg}", kwargs


async def test_logger_may_be_an_adapter_or_a_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    adapter = IdAdapter(logging.getLogger("app.ws"), None)
    async with asgiws.serve(echo, "127.0.0.1", 0, logger=adapter) as server:
        headers = {"X-Forwarded-For": "203.0.113.9"}
        async with peer_connect(
            f"ws://127.0.0.1:{port_of(server)}/", additional_headers=headers
        ) as ws:
            await ws.send("x")
            await ws.recv()
    opened = [r.getMessage() for r in caplog.records if r.name == "app.ws"]
    assert any(m.endswith(" 203.0.113.9 connection open") for m in opened)
    caplog.clear()
    async with asgiws.serve(echo, "127.0.0.1", 0, logger="app.named") as server:
        async with asgiws.connect(f"ws://127.0.0.1:{port_of(server)}/", logger="app.client"):
            pass
    names = {r.name for r in caplog.records if "connection open" in r.getMessage()}
    assert names == {"app.named", "app.client"}


# --- 3. protocol classes and create_protocol --------------------------------------------------


class TokenProtocol(asgiws.WebSocketServerProtocol):
    """The guide's advanced customisation: a subclass with its own hooks."""

    async def process_request(self, path: str, request_headers: Headers) -> Any:
        if "token=good" not in path:
            return http.HTTPStatus.FORBIDDEN, [("X-Why", "token")], b"bad token\n"
        return await super().process_request(path, request_headers)

    def select_subprotocol(
        self, client_subprotocols: Sequence[str], server_subprotocols: Sequence[str]
    ) -> str | None:
        return client_subprotocols[-1] if client_subprotocols else None


async def test_create_protocol_subclass_overrides_the_hooks() -> None:
    kinds: list[type] = []

    async def handler(websocket: asgiws.WebSocketServerProtocol) -> None:
        kinds.append(type(websocket))
        assert isinstance(websocket, asgiws.WebSocketCommonProtocol)
        await websocket.send(websocket.subprotocol or "")

    async with asgiws.serve(handler, "127.0.0.1", 0, create_protocol=TokenProtocol) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        with pytest.raises(PeerInvalidStatus) as refused:
            await peer_connect(url + "?token=bad")
        assert refused.value.response.status_code == 403
        assert refused.value.response.headers["X-Why"] == "token"
        async with peer_connect(
            url + "?token=good", subprotocols=[Subprotocol("a"), Subprotocol("b")]
        ) as ws:
            assert await ws.recv() == "b"
    assert kinds == [TokenProtocol]


async def test_connect_create_protocol_and_abort_handshake() -> None:
    class Client(asgiws.WebSocketClientProtocol):
        pass

    def process_request(path: str, headers: Headers) -> None:
        if path == "/teapot":
            raise AbortHandshake(http.HTTPStatus.IM_A_TEAPOT, {"X-Tea": "1"}, b"tea\n")

    async with asgiws.serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        url = f"ws://127.0.0.1:{port_of(server)}"
        async with asgiws.connect(url + "/", create_protocol=Client) as ws:
            assert type(ws) is Client
            await ws.send("x")
            assert await ws.recv() == "x"
        with pytest.raises(InvalidStatusCode) as refused:
            await asgiws.connect(url + "/teapot")
        assert refused.value.status_code == 418
        assert refused.value.headers["X-Tea"] == "1" and refused.value.body == b"tea\n"


# --- 5. sockets --------------------------------------------------------------------------


async def test_socket_keywords_reach_create_server_and_create_connection() -> None:
    # reuse_port: two servers share one port (the kernel spreads clients).
    async with asgiws.serve(echo, "127.0.0.1", 0, reuse_port=True, family=socket.AF_INET) as one:
        port = port_of(one)
        async with asgiws.serve(echo, "127.0.0.1", port, reuse_port=True, backlog=16) as two:
            assert port_of(two) == port
            # host/port on connect() win over the URI's.
            async with asgiws.connect(
                "ws://example.invalid/", host="127.0.0.1", port=port
            ) as ws:
                await ws.send("shared")
                assert await ws.recv() == "shared"
    with pytest.raises(OSError):
        async with asgiws.serve(echo, "127.0.0.1", 0) as taken:
            async with asgiws.serve(echo, "127.0.0.1", port_of(taken)):
                pass


async def test_host_none_listens_on_every_interface_and_sock_is_used_as_given() -> None:
    async with asgiws.serve(echo, None, 0) as server:
        addresses = {sock.getsockname()[0] for sock in server.sockets}
        assert "0.0.0.0" in addresses
        v4 = next(s for s in server.sockets if s.family == socket.AF_INET)
        async with peer_connect(f"ws://127.0.0.1:{v4.getsockname()[1]}/") as ws:
            await ws.send("any")
            assert await ws.recv() == "any"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    async with asgiws.serve(echo, sock=sock) as server:
        assert server.sockets[0].getsockname() == sock.getsockname()


async def test_unix_serve_and_unix_connect(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    async with asgiws.unix_serve(echo, path) as server:
        assert server.sockets[0].family == socket.AF_UNIX
        async with asgiws.unix_connect(path, "ws://localhost/room") as ws:
            await ws.send("over unix")
            assert await ws.recv() == "over unix"
        async with peer_unix_connect(path, "ws://localhost/") as peer:
            await peer.send("peer")
            assert await peer.recv() == "peer"
    assert not os.path.exists(path)


async def test_serve_forever_returns_once_closed_and_closes_when_cancelled() -> None:
    server = await asgiws.serve(echo, "127.0.0.1", 0)
    forever = asyncio.create_task(server.serve_forever())
    async with peer_connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
        await ws.send("up")
        assert await ws.recv() == "up"
        assert not forever.done()
        server.close()
        await asyncio.wait_for(forever, TIMEOUT)
        assert ws.close_code is None or ws.close_code == 1001
    other = await asgiws.serve(echo, "127.0.0.1", 0)
    forever = asyncio.create_task(other.serve_forever())
    await asyncio.sleep(0)
    forever.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forever
    await asyncio.wait_for(other.wait_closed(), TIMEOUT)
    assert not other.is_serving()


# --- 6. options with websockets' meaning ------------------------------------------------------


async def test_close_timeout_none_waits_for_the_peer_close_frame() -> None:
    released = asyncio.Event()
    result: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(websocket: asgiws.WebSocketServerProtocol) -> None:
        await websocket.close(4000, "bye")
        result.set_result(websocket.close_code)

    async def slow_peer(ws: ServerConnection) -> None:
        await released.wait()

    # The asgiws client closes and the websockets peer answers the close frame:
    # with close_timeout=None the client waits for it (websockets 10: the
    # default 10 s), it does not drop the connection at once (1006).
    async with peer_serve(slow_peer, "127.0.0.1", 0) as peer:
        port = peer.sockets[0].getsockname()[1]
        ws = await asgiws.connect(f"ws://127.0.0.1:{port}/", close_timeout=None)
        await asyncio.wait_for(ws.close(), TIMEOUT)
        assert ws.close_code == 1000 and ws.close_rcvd is not None
        released.set()
    async with asgiws.serve(handler, "127.0.0.1", 0, close_timeout=None) as server:
        async with peer_connect(f"ws://127.0.0.1:{port_of(server)}/") as peer_ws:
            await asyncio.wait_for(peer_ws.wait_closed(), TIMEOUT)
        assert await asyncio.wait_for(result, TIMEOUT) == 4000  # the echo of ours


# --- 7. the exception tree ---------------------------------------------------------------------


async def test_exceptions_are_raised_where_websockets_raises_them() -> None:
    for name in (
        "ConnectionClosed", "InvalidHandshake", "SecurityError", "InvalidMessage",
        "InvalidHeader", "InvalidHeaderFormat", "InvalidHeaderValue", "InvalidOrigin",
        "InvalidUpgrade", "InvalidStatus", "InvalidStatusCode", "NegotiationError",
        "DuplicateParameter", "InvalidParameterName", "InvalidParameterValue",
        "AbortHandshake", "RedirectHandshake", "InvalidState", "InvalidURI",
        "PayloadTooBig", "ProtocolError",
    ):
        assert issubclass(getattr(asgiws, name), WebSocketException), name
    with pytest.raises(InvalidURI):
        asgiws.connect("http://example.com/")

    async def hop(ws: asgiws.WebSocketServerProtocol) -> None:
        raise AssertionError("never reached")

    def redirect_forever(path: str, headers: Headers) -> Any:
        return http.HTTPStatus.FOUND, {"Location": path}, b""

    async with asgiws.serve(hop, "127.0.0.1", 0, process_request=redirect_forever) as server:
        with pytest.raises(SecurityError, match="redirects"):
            await asgiws.connect(f"ws://127.0.0.1:{port_of(server)}/loop")
        with pytest.raises(InvalidHandshake):  # the base catches the whole family
            await asgiws.connect(f"ws://127.0.0.1:{port_of(server)}/loop")

    async with asgiws.serve(echo, "127.0.0.1", 0, max_size=100) as server:
        async with asgiws.connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            await ws.send("x" * 101)
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.code == 1009

    # A connection object before its opening handshake completed.
    detached = asgiws.WebSocketClientProtocol(ws.options)
    with pytest.raises(InvalidState):
        await detached.send("too early")


async def test_payload_too_big_is_the_cause_on_the_receiving_side() -> None:
    async def big(ws: asgiws.WebSocketServerProtocol) -> None:
        await ws.send("y" * 1000)
        await ws.wait_closed()

    async with asgiws.serve(big, "127.0.0.1", 0) as server:
        async with asgiws.connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=100) as ws:
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(closed.value.__cause__, PayloadTooBig)


# --- 8. HTTP Basic Auth --------------------------------------------------------------------


async def test_basic_auth_with_credentials() -> None:
    async def whoami(websocket: Any) -> None:
        await websocket.send(websocket.username)

    factory = asgiws.basic_auth_protocol_factory(
        realm="my dev server", credentials=[("hello", "iloveyou"), ("bob", "s3cret")]
    )
    async with asgiws.serve(whoami, "127.0.0.1", 0, create_protocol=factory) as server:
        port = port_of(server)
        with pytest.raises(PeerInvalidStatus) as missing:
            await peer_connect(f"ws://127.0.0.1:{port}/")
        response = missing.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == (
            'Basic realm="my dev server", charset="UTF-8"'
        )
        assert response.body == b"Missing credentials\n"
        wrong = base64.b64encode(b"hello:nope").decode()
        with pytest.raises(PeerInvalidStatus) as invalid:
            await peer_connect(
                f"ws://127.0.0.1:{port}/", additional_headers={"Authorization": f"Basic {wrong}"}
            )
        assert invalid.value.response.body == b"Invalid credentials\n"
        with pytest.raises(PeerInvalidStatus) as unsupported:
            await peer_connect(
                f"ws://127.0.0.1:{port}/", additional_headers={"Authorization": "Bearer x"}
            )
        assert unsupported.value.response.body == b"Unsupported credentials\n"
        async with peer_connect(f"ws://hello:iloveyou@127.0.0.1:{port}/") as ws:
            assert await ws.recv() == "hello"
        async with asgiws.connect(f"ws://bob:s3cret@127.0.0.1:{port}/") as mine:
            assert await mine.recv() == "bob"
        async with httpx.AsyncClient() as client:  # plain HTTP is asked for credentials too
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 401


async def test_basic_auth_with_a_check_function_and_bad_arguments() -> None:
    async def check(username: str, password: str) -> bool:
        return password == username[::-1]

    async def whoami(websocket: Any) -> None:
        await websocket.send(websocket.username)

    factory = asgiws.basic_auth_protocol_factory(check_credentials=check)
    async with asgiws.serve(whoami, "127.0.0.1", 0, create_protocol=factory) as server:
        async with peer_connect(f"ws://abc:cba@127.0.0.1:{port_of(server)}/") as ws:
            assert await ws.recv() == "abc"
        with pytest.raises(PeerInvalidStatus):
            await peer_connect(f"ws://abc:abc@127.0.0.1:{port_of(server)}/")
    with pytest.raises(TypeError):
        asgiws.basic_auth_protocol_factory()
    with pytest.raises(TypeError):
        asgiws.basic_auth_protocol_factory(credentials=("a", "b"), check_credentials=check)


# --- 4. extensions ---------------------------------------------------------------------------


async def test_extensions_argument_configures_permessage_deflate_on_both_sides() -> None:
    from websockets.extensions.permessage_deflate import (
        ClientPerMessageDeflateFactory as PeerClientDeflate,
    )

    from asgiws.extensions import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

    server_factory = ServerPerMessageDeflateFactory(
        server_max_window_bits=10, server_no_context_takeover=True
    )
    async with asgiws.serve(
        echo, "127.0.0.1", 0, compression=None, extensions=[server_factory]
    ) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        async with peer_connect(
            url, extensions=[PeerClientDeflate(client_max_window_bits=True)], compression=None
        ) as ws:
            assert ws.response is not None
            agreed = ws.response.headers["Sec-WebSocket-Extensions"]
            assert "server_max_window_bits=10" in agreed
            assert "server_no_context_takeover" in agreed
            await ws.send("z" * 5000)
            assert await ws.recv() == "z" * 5000
        client_factory = ClientPerMessageDeflateFactory(client_no_context_takeover=True)
        async with asgiws.connect(url, compression=None, extensions=[client_factory]) as mine:
            assert "client_no_context_takeover" in mine.request_headers[
                "Sec-WebSocket-Extensions"
            ]
            await mine.send("y" * 5000)
            assert await mine.recv() == "y" * 5000
    async with asgiws.serve(echo, "127.0.0.1", 0, extensions=[]) as server:
        # extensions=[] with the default compression: permessage-deflate as usual.
        async with peer_connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]

# Extensions other than permessage-deflate: tests/integration/test_extensions.py.
