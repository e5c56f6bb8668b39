"""`asgiws.client.connect()` end to end: against the `websockets` library's
server and against asgiws's own server (handler API and raw ASGI), on real
sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve

from asgiws import __version__
from asgiws.client import InvalidStatus, connect
from asgiws.config import Config
from asgiws.connection import WebSocketConnection
from asgiws.exceptions import ConnectionClosedError, ConnectionClosedOK
from asgiws.handler import serve as asgiws_serve
from asgiws.server import Server
from asgiws.websocket.deflate import DEFAULT_SERVER_MAX_WINDOW_BITS
from tests.apps import echo as echo_app

TIMEOUT = 10.0

Handler = Callable[[Any], Awaitable[None]]
StartPeer = Callable[..., contextlib.AbstractAsyncContextManager[int]]


@contextlib.asynccontextmanager
async def websockets_peer(handler: Handler, **options: Any) -> AsyncIterator[int]:
    """The websockets library's server; yields its port."""
    async with websockets_serve(handler, "127.0.0.1", 0, **options) as server:
        yield server.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def asgiws_peer(handler: Handler, **options: Any) -> AsyncIterator[int]:
    """asgiws's own server through its handler API; yields its port."""
    async with asgiws_serve(handler, "127.0.0.1", 0, **options) as server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture(params=["websockets", "asgiws"])
def peer(request: pytest.FixtureRequest) -> StartPeer:
    return websockets_peer if request.param == "websockets" else asgiws_peer


def headers_of(ws: Any) -> Any:
    """The upgrade request's headers as the server saw them, on either server."""
    if isinstance(ws, ServerConnection):
        assert ws.request is not None
        return ws.request.headers
    return ws.request_headers


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


# --- messages ------------------------------------------------------------------------


async def test_echo_text_bytes_fragments_and_empty(peer: StartPeer) -> None:
    async with peer(echo) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\xff" * 50_000)
        assert await ws.recv() == b"\x00\xff" * 50_000
        await ws.send(["frag", "men", "ts"])
        assert await ws.recv() == "fragments"

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in (b"a", b"b", b"c"):
                yield chunk

        await ws.send(chunks())
        assert await ws.recv() == b"abc"
        await ws.send("")
        assert await ws.recv() == ""
        await ws.send(b"")
        assert await ws.recv() == b""
        assert ws.open


async def test_raw_asgi_app_on_asgiws_server() -> None:
    server = Server(Config(app=echo_app, port=0, lifespan="off"))
    await server.startup()
    try:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send("über")
            assert await ws.recv() == "über"
            assert ws.remote_address[1] == port
            assert ws.local_address[0] == "127.0.0.1"
    finally:
        server.should_exit = True
        await server.shutdown()


async def test_ping_returns_latency(peer: StartPeer) -> None:
    async with peer(echo) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
        waiter = await ws.ping()
        latency = await asyncio.wait_for(waiter, TIMEOUT)
        assert 0 <= latency < TIMEOUT
        assert ws.latency == latency
        await ws.pong(b"heartbeat")  # unsolicited: the peer ignores it
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def test_keepalive_ping_timeout_closes_an_unresponsive_connection() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(switching_protocols(head))
        await reader.read()  # never answers a ping
        writer.close()

    async with raw_server(deaf) as port:
        ws = await connect(
            f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.05, close_timeout=0.5
        )
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
    assert ws.close_sent is not None
    assert ws.close_sent.code == 1011
    with pytest.raises(ConnectionClosedError):
        await ws.recv()


# --- handshake options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "expected"),
    [(["chat"], "chat"), (["unknown", "superchat"], "superchat")],
)
async def test_subprotocol_negotiation(
    peer: StartPeer, offered: list[str], expected: str | None
) -> None:
    seen: list[str | None] = []

    async def handler(ws: Any) -> None:
        seen.append(ws.subprotocol)

    async with (
        peer(handler, subprotocols=["superchat", "chat"]) as port,
        connect(f"ws://127.0.0.1:{port}/", subprotocols=offered) as ws,
    ):
        assert ws.subprotocol == expected
        await ws.wait_closed()
    assert seen == [expected]


@pytest.mark.parametrize("offered", [["other"], None])
async def test_no_common_subprotocol(offered: list[str] | None) -> None:
    """asgiws opens without a subprotocol; websockets (13+) refuses with 400."""
    async with (
        asgiws_peer(echo, subprotocols=["chat"]) as port,
        connect(f"ws://127.0.0.1:{port}/", subprotocols=offered) as ws,
    ):
        assert ws.subprotocol is None
    async with websockets_peer(echo, subprotocols=["chat"]) as port:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/", subprotocols=offered)
        assert caught.value.status_code == 400


async def test_extra_headers_origin_user_agent_and_credentials_arrive(peer: StartPeer) -> None:
    received: list[Any] = []

    async def handler(ws: Any) -> None:
        received.append(headers_of(ws))

    async with peer(handler) as port:
        uri = f"ws://alice:s%3Acret@127.0.0.1:{port}/"
        async with connect(
            uri, extra_headers={"X-Token": "t1"}, origin="https://example.com"
        ) as ws:
            await ws.wait_closed()
        async with connect(
            f"ws://127.0.0.1:{port}/",
            extra_headers=[("X-Multi", "1"), ("X-Multi", "2")],
            user_agent_header=None,
        ) as ws2:
            await ws2.wait_closed()
    first, second = received
    assert first["X-Token"] == "t1"
    assert first["Origin"] == "https://example.com"
    assert first["User-Agent"] == f"asgiws/{__version__}"
    assert first["Authorization"] == "Basic " + base64.b64encode(b"alice:s:cret").decode()
    assert second.get_all("X-Multi") == ["1", "2"]
    assert "User-Agent" not in second
    assert "Origin" not in second
    # The client's own view of what it sent.
    assert ws.request_headers["x-token"] == "t1"
    assert ws.request_headers["host"] == f"127.0.0.1:{port}"
    assert ws.path == "/"


async def test_path_and_query_reach_the_server(peer: StartPeer) -> None:
    paths: list[str] = []

    async def handler(ws: Any) -> None:
        if isinstance(ws, ServerConnection):
            assert ws.request is not None
            paths.append(ws.request.path)
        else:
            paths.append(ws.path)

    async with (
        peer(handler) as port,
        connect(f"ws://127.0.0.1:{port}/chat/room?user=b%C3%A9a&x=1") as ws,
    ):
        await ws.wait_closed()
    assert ws.path == "/chat/room?user=b%C3%A9a&x=1"
    # On the wire exactly as given: the query string too, escapes untouched.
    assert paths[0] == "/chat/room?user=b%C3%A9a&x=1"


async def test_compression_negotiated_with_websockets_server() -> None:
    extensions: list[list[Any]] = []

    async def handler(ws: ServerConnection) -> None:
        extensions.append(ws.protocol.extensions)
        await echo(ws)

    text = "compress me " * 10_000
    async with websockets_peer(handler) as port:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            value = ws.response_headers["Sec-WebSocket-Extensions"]
            assert value.startswith("permessage-deflate")
            await ws.send(text)
            assert await ws.recv() == text
        async with connect(f"ws://127.0.0.1:{port}/", ws_deflate_client_max_window_bits=10) as ws:
            assert "client_max_window_bits=10" in ws.response_headers["Sec-WebSocket-Extensions"]
            await ws.send(text)
            assert await ws.recv() == text
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
            await ws.send(text)
            assert await ws.recv() == text
    assert [len(e) for e in extensions] == [1, 1, 0]
    # The server inflates our messages with the window we asked for.
    assert extensions[1][0].remote_max_window_bits == 10


async def test_compression_negotiated_with_asgiws_server() -> None:
    text = "compress me " * 10_000
    async with asgiws_peer(echo) as port:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            extensions = ws.response_headers["Sec-WebSocket-Extensions"]
            bits = DEFAULT_SERVER_MAX_WINDOW_BITS  # 14 on zlib-ng, 12 on Python's zlib
            # our client offers a bare client_max_window_bits: the server picks 12
            assert extensions == (
                f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits=12"
            )
            await ws.send(text)
            assert await ws.recv() == text
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
            await ws.send(text)
            assert await ws.recv() == text
    async with (
        asgiws_peer(echo, compression=None) as port,
        connect(f"ws://127.0.0.1:{port}/") as ws,
    ):
        assert "Sec-WebSocket-Extensions" not in ws.response_headers
        await ws.send(text)
        assert await ws.recv() == text


# --- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting the test CA) for 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_context)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_context)
    return server_context, client_context


async def test_wss_with_trusted_certificate(
    peer: StartPeer, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_context, client_context = tls
    async with peer(echo, ssl=server_context) as port:
        async with connect(f"wss://127.0.0.1:{port}/", ssl=client_context) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"
            assert ws.transport is not None
            assert ws.transport.get_extra_info("ssl_object") is not None
        # server_hostname: the name the certificate is checked against.
        async with connect(
            f"wss://127.0.0.1:{port}/", ssl=client_context, server_hostname="localhost"
        ) as ws:
            await ws.send(b"bytes")
            assert await ws.recv() == b"bytes"


async def test_wss_verifies_certificates_by_default(
    peer: StartPeer, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_context, client_context = tls
    async with peer(echo, ssl=server_context) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"wss://127.0.0.1:{port}/")
        # The certificate is valid for 127.0.0.1 and localhost only.
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(
                f"wss://127.0.0.1:{port}/", ssl=client_context, server_hostname="example.com"
            )
        # Not a transient error: the reconnecting iterator raises it at once.
        with pytest.raises(ssl.SSLCertVerificationError):
            async for _ in connect(f"wss://127.0.0.1:{port}/"):
                pytest.fail("connected without a trusted certificate")


# --- refusals and errors ----------------------------------------------------------------


async def test_4xx_refusal_exposes_status_headers_and_body_from_asgiws() -> None:
    def process_request(path: str, headers: Any) -> Any:
        return (http.HTTPStatus.FORBIDDEN, [("X-Reason", "no token")], b"forbidden\n")

    async with asgiws_peer(echo, process_request=process_request) as port:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/")
    assert caught.value.status_code == 403
    assert caught.value.headers["x-reason"] == "no token"
    assert caught.value.body == b"forbidden\n"
    assert "403" in str(caught.value)


async def test_4xx_refusal_from_websockets_server() -> None:
    def process_request(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "who are you?\n")

    async with websockets_peer(echo, process_request=process_request) as port:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/")
    assert caught.value.status_code == 401
    assert caught.value.headers["content-type"].startswith("text/plain")
    assert caught.value.body == b"who are you?\n"


async def test_plain_http_server_is_a_refusal() -> None:
    """An HTTP server that ignores the upgrade answers 200: not a WebSocket."""

    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with raw_server(ok) as port:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/")
    assert caught.value.status_code == 200
    assert caught.value.body == b"ok"


async def test_refusal_whose_body_ends_when_the_server_closes() -> None:
    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 503 Busy\r\nRetry-After: 1\r\n\r\ntry ")
        await writer.drain()
        writer.write(b"later")
        writer.close()

    from asgiws.client import is_transient

    async with raw_server(busy) as port:
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/")
    assert caught.value.status_code == 503
    assert caught.value.headers["retry-after"] == "1"
    assert caught.value.body == b"try later"
    assert is_transient(caught.value)


async def test_redirect_is_followed() -> None:
    def process_request(path: str, headers: Any) -> Any:
        if path == "/old":
            return (http.HTTPStatus.FOUND, [("Location", "/new")], b"")
        return None

    async with (
        asgiws_peer(echo, process_request=process_request) as port,
        connect(f"ws://127.0.0.1:{port}/old") as ws,
    ):
        assert ws.path == "/new"
        await ws.send("moved")
        assert await ws.recv() == "moved"


async def test_refused_connection_raises_oserror_unchanged() -> None:
    # A port that was free a moment ago and that nothing listens on.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await connect(f"ws://127.0.0.1:{port}/")


async def test_open_timeout_bounds_a_server_that_never_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up

    async with raw_server(silent) as port:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)
        assert loop.time() - started < 5.0


@pytest.mark.parametrize("bad", ["http://localhost/", "ws:///path", "ws://h:99999/", "localhost"])
def test_bad_uri_fails_before_connecting(bad: str) -> None:
    from asgiws.uri import InvalidURI

    with pytest.raises(InvalidURI):
        connect(bad)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="wss://"):
        connect("ws://localhost/", ssl=ssl.create_default_context())
    with pytest.raises(TypeError, match="backlog"):  # a server's option
        connect("ws://localhost/", backlog=80)
    with pytest.raises(ValueError, match="compression"):
        connect("ws://localhost/", compression="gzip")


# --- closing ----------------------------------------------------------------------------


async def test_client_close_code_reaches_the_server(peer: StartPeer) -> None:
    loop = asyncio.get_running_loop()
    server_close: asyncio.Future[tuple[int | None, str | None]] = loop.create_future()

    async def handler(ws: Any) -> None:
        with contextlib.suppress(Exception):
            await ws.recv()
        await ws.wait_closed()
        server_close.set_result((ws.close_code, ws.close_reason))

    async with peer(handler) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/")
        await ws.close(4000, "bye")
        assert ws.closed
        # The server echoed our code.
        assert ws.close_code == 4000
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert await asyncio.wait_for(server_close, TIMEOUT) == (4000, "bye")


async def test_server_close_codes_reach_the_client(peer: StartPeer) -> None:
    async def handler(ws: Any) -> None:
        code = int(await ws.recv())
        await ws.close(code, f"code {code}")

    async with peer(handler) as port:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("4001")
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert (caught.value.code, caught.value.reason) == (4001, "code 4001")
            assert (ws.close_code, ws.close_reason) == (4001, "code 4001")
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("1000")
            messages = [message async for message in ws]  # ends quietly on 1000
            assert messages == []
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000


async def test_max_size_on_the_client_closes_with_1009(peer: StartPeer) -> None:
    server_code: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: Any) -> None:
        await ws.send("small")
        await ws.send("x" * 2000)
        await ws.wait_closed()
        server_code.set_result(ws.close_code)

    async with peer(handler) as port:
        async with connect(f"ws://127.0.0.1:{port}/", max_size=1000) as ws:
            assert await ws.recv() == "small"
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.sent is not None
            assert caught.value.sent.code == 1009
        assert await asyncio.wait_for(server_code, TIMEOUT) == 1009


# --- bytes around the handshake -----------------------------------------------------------


ServeRaw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handle: ServeRaw) -> AsyncIterator[int]:
    """A TCP server speaking whatever bytes `handle` writes; yields its port."""

    async def handle_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client hung up first: nothing left to say
        finally:
            writer.close()

    server = await asyncio.start_server(handle_and_close, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def switching_protocols(request_head: bytes, *extra: bytes) -> bytes:
    from asgiws.websocket.handshake import accept_key

    key = next(
        line.split(b":", 1)[1].strip()
        for line in request_head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + accept_key(key).encode(),
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


TEXT_HELLO = b"\x81\x05hello"  # unmasked text frame "hello"
CLOSE_1000 = b"\x88\x02\x03\xe8"


async def test_frames_in_the_handshake_packet_are_not_lost() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(switching_protocols(head) + TEXT_HELLO + TEXT_HELLO)
        await reader.read(1)  # the client's close frame (or EOF)
        writer.close()

    async with (
        raw_server(handle) as port,
        connect(f"ws://127.0.0.1:{port}/", close_timeout=1) as ws,
    ):
        assert await ws.recv() == "hello"
        assert await ws.recv() == "hello"


async def test_server_that_answers_sends_and_hangs_up_at_once() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(switching_protocols(head) + TEXT_HELLO + CLOSE_1000)
        writer.close()

    async with raw_server(handle) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/")
        assert await ws.recv() == "hello"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        assert ws.close_code == 1000


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda head: b"HTTP/1.1 101 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", "larger"),
        (lambda head: b"SSH-2.0-OpenSSH\r\n\r\n", "invalid HTTP response"),
        (lambda head: b"HTTP/1.1 101 OK\r\n folded\r\n\r\n", "invalid HTTP response"),
        (
            lambda head: switching_protocols(head).replace(b"Accept: ", b"Accept: x"),
            "Sec-WebSocket-Accept",
        ),
        (
            lambda head: switching_protocols(head, b"Sec-WebSocket-Protocol: chat"),
            "subprotocol",
        ),
        (
            lambda head: switching_protocols(head, b"Sec-WebSocket-Extensions: x-unknown"),
            "extension",
        ),
        (
            lambda head: switching_protocols(head).replace(b"Upgrade: websocket", b"Upgrade: h2c"),
            "Upgrade",
        ),
        (
            lambda head: switching_protocols(head).replace(b"Connection: Upgrade", b"X: y"),
            "Connection",
        ),
    ],
)
async def test_bad_answers_are_refused(answer: Callable[[bytes], bytes], message: str) -> None:
    from asgiws.exceptions import (
        InvalidHandshake,
        InvalidHeaderValue,
        InvalidMessage,
        InvalidUpgrade,
        NegotiationError,
        SecurityError,
    )

    # The websockets 10 exception for each kind of bad answer.
    expected: type[InvalidHandshake] = {
        "larger": InvalidMessage,
        "invalid HTTP response": InvalidMessage,
        "Sec-WebSocket-Accept": InvalidHeaderValue,
        "subprotocol": NegotiationError,
        "extension": NegotiationError,
        "Upgrade": InvalidUpgrade,
        "Connection": InvalidUpgrade,
    }[message]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(head))
        await reader.read()
        writer.close()

    async with raw_server(handle) as port:
        with pytest.raises(InvalidHandshake, match=message) as caught:
            await connect(f"ws://127.0.0.1:{port}/", compression=None)
    assert not isinstance(caught.value, InvalidStatus)
    assert type(caught.value) is expected
    if message == "larger":
        assert isinstance(caught.value.__cause__, SecurityError)


async def test_hang_up_during_handshake_is_invalid_message_and_transient() -> None:
    from asgiws.client import InvalidMessage, is_transient

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with raw_server(handle) as port:
        with pytest.raises(InvalidMessage) as caught:
            await connect(f"ws://127.0.0.1:{port}/")
    assert is_transient(caught.value)


# --- reconnecting ------------------------------------------------------------------------


class RetryFlag(logging.Handler):
    """Sets an event each time the client logs that it will retry."""

    def __init__(self) -> None:
        super().__init__()
        self.retries = 0
        self.retried = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1
            self.retried.set()


@pytest.fixture
def client_logger() -> tuple[logging.Logger, RetryFlag]:
    logger = logging.getLogger("tests.client.reconnect")
    logger.setLevel(logging.INFO)
    flag = RetryFlag()
    logger.handlers[:] = [flag]
    return logger, flag


async def test_async_for_survives_a_server_restart(
    client_logger: tuple[logging.Logger, RetryFlag],
) -> None:
    logger, flag = client_logger

    async def greet(ws: WebSocketConnection) -> None:
        await ws.send("hello")
        await ws.wait_closed()

    server = await asgiws_serve(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    restarted: asyncio.Task[Any] | None = None

    async def restart_once_the_client_retries() -> Any:
        await flag.retried.wait()
        return await asgiws_serve(greet, "127.0.0.1", port)

    greetings: list[str | bytes] = []
    codes: list[int | None] = []

    async def run_client() -> None:
        nonlocal restarted
        async for ws in connect(f"ws://127.0.0.1:{port}/", logger=logger):
            greetings.append(await ws.recv())
            if len(greetings) == 2:
                await ws.close()
                break
            # The server goes away (1001), then comes back on the same port.
            server.close()
            await server.wait_closed()
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            codes.append(ws.close_code)
            restarted = asyncio.create_task(restart_once_the_client_retries())

    try:
        await asyncio.wait_for(run_client(), TIMEOUT)
    finally:
        server.close()
        if restarted is not None:
            if not restarted.done():
                restarted.cancel()  # the client failed before retrying
            with contextlib.suppress(asyncio.CancelledError):
                second = await restarted
                second.close()
                await second.wait_closed()
    assert greetings == ["hello", "hello"]
    assert codes == [1001]
    assert flag.retries >= 1  # it did reconnect after a refused attempt


async def test_async_for_retries_5xx_and_raises_4xx(
    client_logger: tuple[logging.Logger, RetryFlag],
) -> None:
    logger, flag = client_logger
    answers = [http.HTTPStatus.SERVICE_UNAVAILABLE, None, http.HTTPStatus.NOT_FOUND]
    seen: list[Any] = []

    def process_request(path: str, headers: Any) -> Any:
        status = answers[len(seen)]
        seen.append(status)
        return None if status is None else (status, [], b"")

    async def hello(ws: WebSocketConnection) -> None:
        await ws.send("hello")

    messages: list[str | bytes] = []

    async def run_client(port: int) -> None:
        async for ws in connect(f"ws://127.0.0.1:{port}/", logger=logger):
            messages.append(await ws.recv())
            await ws.close()
            break  # the first success, after one 503
        with pytest.raises(InvalidStatus) as caught:
            async for _ in connect(f"ws://127.0.0.1:{port}/", logger=logger):
                pytest.fail("connected despite a 404")
        assert caught.value.status_code == 404

    async with asgiws_peer(hello, process_request=process_request) as port:
        await asyncio.wait_for(run_client(port), TIMEOUT)
    assert messages == ["hello"]
    assert len(seen) == 3
    assert flag.retries == 1  # the 503 only
