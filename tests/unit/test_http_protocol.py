"""HttpProtocol against real sockets, once per parser."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import httpx
import pytest

from asgiws.datastructures import Headers
from asgiws.http.flow import BODY_HIGH_WATER, FlowControl
from asgiws.http.protocol import HttpProtocol
from asgiws.types import ConnectionContext, RequestHead, Scope, ServerState

from .http_helpers import (
    DEFAULT_HEADERS,
    PARSERS,
    TIMEOUT,
    RecordingObserver,
    echo_app,
    open_raw,
    read_eof,
    read_response,
    request,
    serve_http,
)

pytestmark = pytest.mark.parametrize("http", PARSERS)


def only_connection(state: ServerState) -> HttpProtocol:
    (conn,) = state.connections
    assert isinstance(conn, HttpProtocol)
    return conn


async def respond(send: Any, body: bytes = b"ok", status: int = 200, headers: Any = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", b"%d" % len(body)), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- the ordinary path ------------------------------------------------------------
async def test_scope_and_default_headers(http: str) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        scopes.append(scope)
        scope["state"]["mutated"] = True  # must not leak into the server's state
        await respond(send)

    state = ServerState(default_headers=list(DEFAULT_HEADERS), lifespan_state={"db": "x"})
    async with (
        serve_http(app, state, http=http, root_path="/mount") as srv,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(srv.url + "/p%C3%A9?q=1", headers={"X-A": "b"})
    assert response.status_code == 200 and response.text == "ok"
    assert response.headers["server"] == "asgiws"
    assert response.headers["date"] == DEFAULT_HEADERS[1][1].decode()
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1" and scope["scheme"] == "http"
    assert scope["method"] == "GET"
    assert scope["root_path"] == "/mount"
    assert scope["path"] == "/mount/pé" and scope["raw_path"] == b"/mount/p%C3%A9"
    assert scope["query_string"] == b"q=1"
    assert (b"x-a", b"b") in scope["headers"]
    assert scope["server"] == ("127.0.0.1", srv.port)
    assert scope["client"][0] == "127.0.0.1"
    assert scope["state"] == {"db": "x", "mutated": True}
    assert state.lifespan_state == {"db": "x"}
    # scope["asgi"] is one dict for every scope: a change is refused with a
    # clear error instead of reaching every other connection; a copy is free.
    with pytest.raises(TypeError, match="shared by every connection"):
        scope["asgi"]["version"] = "2.0"
    mine = copy.deepcopy(scope["asgi"])
    mine["version"] = "2.0"
    assert scope["asgi"]["version"] == "3.0"
    assert state.total_requests == 1


async def test_app_headers_replace_defaults(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, headers=[(b"Server", b"mine")])

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        response = await read_response(reader)
    assert response.header_all("server") == ["mine"]
    writer.close()


async def test_keep_alive_reuses_the_connection(http: str) -> None:
    clients: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        clients.append(scope["client"])
        await respond(send)

    async with serve_http(app, http=http) as srv, httpx.AsyncClient() as client:
        for _ in range(3):
            assert (await client.get(srv.url)).status_code == 200
    assert len(clients) == 3 and len(set(clients)) == 1


async def test_idle_connection_closes_after_keep_alive_timeout(http: str) -> None:
    async with serve_http(echo_app, http=http, timeout_keep_alive=0.2) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        assert (await read_response(reader)).status == 200
        assert await read_eof(reader) == b""
        assert not srv.state.connections
        writer.close()


async def test_keep_alive_timeout_counts_from_the_last_response(http: str) -> None:
    async with serve_http(echo_app, http=http, timeout_keep_alive=0.4) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        assert (await read_response(reader)).status == 200
        await asyncio.sleep(0.3)  # idle for most of the timeout, then busy again
        writer.write(request())
        assert (await read_response(reader)).status == 200
        answered = asyncio.get_running_loop().time()
        assert await read_eof(reader) == b""
        # Closed a full timeout after the second response, not the first.
        assert asyncio.get_running_loop().time() - answered >= 0.4 - 0.05
        writer.close()


async def test_a_response_slower_than_the_keep_alive_timeout_is_not_cut(http: str) -> None:
    async def slow_app(scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.5)
        await respond(send, b"late")

    async with serve_http(slow_app, http=http, timeout_keep_alive=0.2) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        response = await read_response(reader)
        assert response.status == 200 and response.body == b"late"
        writer.close()


async def test_connection_close_is_honoured(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("GET", "/a", "Connection: close") + request("GET", "/b"))
        response = await read_response(reader)
        assert response.header("connection") == "close" and response.body == b"GET /a  "
        assert await read_eof(reader) == b""  # /b is never answered
        writer.close()


async def test_http10_is_closed_after_the_response(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(b"GET /old HTTP/1.0\r\n\r\n")
        response = await read_response(reader)
        assert response.body == b"GET /old  "
        assert await read_eof(reader) == b""
        writer.close()


async def test_pipelined_requests_are_answered_in_order(http: str) -> None:
    order: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        order.append("start " + scope["path"])
        await echo_app(scope, receive, send)
        order.append("end " + scope["path"])

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(
            request("GET", "/1")
            + request("POST", "/2", body=b"two")
            + request("PUT", "/3", "Transfer-Encoding: chunked", body=b"3\r\nabc\r\n0\r\n\r\n")
            + request("GET", "/4")
        )
        bodies = [(await read_response(reader)).body for _ in range(4)]
        writer.close()
    assert bodies == [b"GET /1  ", b"POST /2  two", b"PUT /3  abc", b"GET /4  "]
    assert order == [f"{what} /{n}" for n in range(1, 5) for what in ("start", "end")]


async def test_chunked_request_and_streamed_response(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        parts = []
        while True:
            message = await receive()
            parts.append(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("POST", "/", "Transfer-Encoding: chunked"))
        writer.write(b"5\r\nhello\r\n")
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        response = await read_response(reader)
        assert response.header("transfer-encoding") == "chunked"
        assert response.body == b"hello world"
        writer.write(request("GET", "/again"))  # the connection is still usable
        assert (await read_response(reader)).status == 200
        writer.close()


async def test_head_sends_no_body(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, b"a body the client must not get")

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("HEAD", "/") + request("GET", "/"))
        head = await read_response(reader, head_only=True)
        assert head.header("content-length") == "30"
        after = await read_response(reader)  # would be garbage if a body had been sent
        assert after.status == 200 and after.body == b"a body the client must not get"
        writer.close()


# --- 100-continue -----------------------------------------------------------------
async def test_100_continue_is_sent_when_the_app_reads(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("POST", "/", "Expect: 100-continue", "Content-Length: 4"))
        interim = await read_response(reader)
        assert interim.status == 100
        writer.write(b"data")
        final = await read_response(reader)
        assert final.status == 200 and final.body == b"POST /  data"
        writer.close()


async def test_no_100_continue_when_the_app_answers_without_reading(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send, b"no thanks", status=413)

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("POST", "/", "Expect: 100-continue", "Content-Length: 4"))
        response = await read_response(reader)
        assert response.status == 413 and response.body == b"no thanks"
        # The client may or may not send the body now: the server closes.
        assert await read_eof(reader) == b""
        writer.close()


# --- bad input ----------------------------------------------------------------------
async def test_oversized_head_gets_431(http: str) -> None:
    async with serve_http(echo_app, http=http, h11_max_incomplete_event_size=1024) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("GET", "/", "X-Big: " + "a" * 4000))
        assert (await read_response(reader)).status == 431
        assert await read_eof(reader) == b""
        writer.close()


async def test_malformed_request_gets_400(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(b"GET / HTTP/1.1\r\nHost test\r\n\r\n")
        response = await read_response(reader)
        assert response.status == 400 and response.header("connection") == "close"
        assert await read_eof(reader) == b""
        writer.close()


async def test_malformed_pipelined_request_is_answered_after_earlier_ones(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("GET", "/ok") + b"NOT HTTP AT ALL\r\n\r\n")
        assert (await read_response(reader)).body == b"GET /ok  "
        assert (await read_response(reader)).status == 400
        assert await read_eof(reader) == b""
        writer.close()


# --- app errors ---------------------------------------------------------------------
async def test_app_exception_before_response_gives_500(http: str, caplog: Any) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise ValueError("boom")

    async with serve_http(app, http=http) as srv, httpx.AsyncClient() as client:
        response = await client.get(srv.url)
        assert response.status_code == 500
        assert (await client.get(srv.url)).status_code == 500  # still keep-alive
    assert "Exception in ASGI application" in caplog.text


async def test_app_exception_after_start_but_before_body_gives_500(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ValueError("boom")

    async with serve_http(app, http=http) as srv, httpx.AsyncClient() as client:
        assert (await client.get(srv.url)).status_code == 500


async def test_app_exception_mid_body_closes_the_connection(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        head = await read_response(reader, head_only=True)
        assert head.status == 200
        rest = await read_eof(reader)
        assert rest == b"7\r\npartial\r\n"  # no terminating chunk: the client sees the cut
        writer.close()


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"type": "http.response.body", "body": b"x"}],
        [{"type": "http.response.start", "status": 200, "headers": [(b"a b", b"c")]}],
        [
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]},
            {"type": "http.response.body", "body": b"too long"},
        ],
    ],
    ids=["no-response", "body-first", "bad-header", "too-long"],
)
async def test_broken_responses_give_500(http: str, messages: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    async with serve_http(app, http=http) as srv, httpx.AsyncClient() as client:
        assert (await client.get(srv.url)).status_code == 500


async def test_send_after_response_complete_raises(http: str) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send)
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except RuntimeError as exc:
            errors.append(exc)

    async with serve_http(app, http=http) as srv, httpx.AsyncClient() as client:
        assert (await client.get(srv.url)).text == "ok"
    assert len(errors) == 1


async def test_limit_concurrency_gives_503(http: str) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await respond(send)

    async with serve_http(app, http=http, limit_concurrency=1) as srv:
        reader1, writer1 = await open_raw(srv.port)
        writer1.write(request())
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        reader2, writer2 = await open_raw(srv.port)
        writer2.write(request())
        assert (await read_response(reader2)).status == 503
        release.set()
        assert (await read_response(reader1)).status == 200
        writer1.close()
        writer2.close()


# --- disconnects and flow control -------------------------------------------------------
async def test_client_disconnect_is_reported(http: str) -> None:
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    send_error: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"
        received.set_result(await receive())  # waits until the client goes
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            send_error.set_result(exc)

    async with serve_http(app, http=http) as srv:
        _reader, writer = await open_raw(srv.port)
        writer.write(request())
        await writer.drain()
        writer.close()
        assert (await asyncio.wait_for(received, TIMEOUT)) == {"type": "http.disconnect"}
        assert isinstance(await asyncio.wait_for(send_error, TIMEOUT), OSError)
        assert not srv.state.connections


async def test_send_waits_while_the_client_does_not_read(http: str) -> None:
    """pause_writing is honoured: the transport buffer stays bounded."""
    chunk = b"x" * (256 * 1024)
    count = 128  # 32 MiB: far more than the kernel socket buffers hold
    blocked = asyncio.Event()
    buffer_sizes: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        conn = only_connection(srv.state)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(count):
            if conn.flow.write_paused:
                blocked.set()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            buffer_sizes.append(conn.transport.get_write_buffer_size())
        await send({"type": "http.response.body", "body": b""})

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        await asyncio.wait_for(blocked.wait(), TIMEOUT)
        assert len(buffer_sizes) < count
        response = await asyncio.wait_for(read_response(reader), 30)
        assert len(response.body) == count * len(chunk)
        writer.close()
    # The buffer never holds much more than one chunk above the high-water mark.
    assert max(buffer_sizes) <= 64 * 1024 + 2 * len(chunk)


async def test_reading_pauses_while_the_app_does_not_consume(
    http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = asyncio.Event()
    original = FlowControl.pause_reading

    def pause_reading(self: FlowControl) -> None:
        original(self)
        paused.set()

    monkeypatch.setattr(FlowControl, "pause_reading", pause_reading)
    total = 8 * 1024 * 1024
    sizes: list[int] = []
    reading: list[bool] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await paused.wait()
        reading.append(only_connection(srv.state).transport.is_reading())
        received = 0
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            received += len(message["body"])
            if not message["more_body"]:
                break
        await respond(send, str(received).encode())

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("POST", "/", f"Content-Length: {total}"))
        writer.write(b"y" * total)
        response = await read_response(reader)
        assert response.body == str(total).encode()
        writer.close()
    assert reading == [False]  # the transport itself stopped reading
    # What piled up before the app read is bounded by the high-water mark plus one read.
    assert sizes[0] <= BODY_HIGH_WATER + 256 * 1024


# --- graceful shutdown and the registry --------------------------------------------
async def test_shutdown_closes_an_idle_connection_now(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        await read_response(reader)
        only_connection(srv.state).shutdown()
        assert await read_eof(reader) == b""
        assert not srv.state.connections
        writer.close()


async def test_shutdown_lets_the_current_response_finish(http: str) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await respond(send, b"finished")

    async with serve_http(app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request() + request("GET", "/never"))
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        only_connection(srv.state).shutdown()
        release.set()
        response = await read_response(reader)
        assert response.body == b"finished" and response.header("connection") == "close"
        assert await read_eof(reader) == b""
        writer.close()


async def test_access_log(http: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="asgiws.access")
    async with serve_http(echo_app, http=http) as srv, httpx.AsyncClient() as client:
        await client.get(srv.url + "/a b?x=1")
    (record,) = [r for r in caplog.records if r.name == "asgiws.access"]
    assert record.getMessage().endswith(' - "GET /a%20b?x=1 HTTP/1.1" 200 OK')
    assert record.getMessage().startswith("127.0.0.1:")


async def test_access_log_can_be_disabled(http: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="asgiws.access")
    async with (
        serve_http(echo_app, http=http, access_log=False) as srv,
        httpx.AsyncClient() as client,
    ):
        await client.get(srv.url)
    assert not [r for r in caplog.records if r.name == "asgiws.access"]


# --- the observer -------------------------------------------------------------------------
async def test_observer_hears_every_request_done_in_order(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"2")]}
        )
        await asyncio.sleep(0.05)  # between the head and the last byte: part of the duration
        await send({"type": "http.response.body", "body": b"ok"})

    observer = RecordingObserver()
    async with serve_http(app, http=http, observer=observer, root_path="/mount") as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("GET", "/a%20b?x=1") + request("POST", "/c", body=b"data"))
        assert (await read_response(reader)).status == 201
        assert (await read_response(reader)).status == 201
        writer.close()
    first, second = observer.requests
    assert (first.method, first.path, first.query_string, first.http_version, first.status) == (
        "GET",
        "/mount/a b",
        b"x=1",
        "1.1",
        201,
    )
    assert first.client is not None and first.client[0] == "127.0.0.1"
    assert first.duration >= 0.05
    assert (second.method, second.path, second.status) == ("POST", "/mount/c", 201)


async def test_observer_hears_500_for_an_app_error(http: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    observer = RecordingObserver()
    async with serve_http(app, http=http, observer=observer) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        assert (await read_response(reader)).status == 500
        writer.close()
    assert [event.status for event in observer.requests] == [500]


async def test_observer_hears_a_request_once_when_its_body_outlives_the_response(
    http: str,
) -> None:
    observer = RecordingObserver()
    async with serve_http(
        lambda scope, receive, send: respond(send), http=http, observer=observer
    ) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("POST", "/", "Content-Length: 100000", body=b"x" * 10))
        assert (await read_response(reader)).status == 200
        writer.close()  # the rest of the body never comes: the connection is lost
        await read_eof(reader)
        await asyncio.sleep(0.05)  # room for a second report
    assert [event.status for event in observer.requests] == [200]


async def test_observer_hears_a_response_the_client_cut_off_but_not_an_unanswered_one(
    http: str,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"

    observer = RecordingObserver()
    async with serve_http(app, http=http, observer=observer) as srv:
        for path in ("/silent", "/stream"):
            reader, writer = await open_raw(srv.port)
            writer.write(request("GET", path))
            if path == "/stream":
                await reader.readuntil(b"part")
            writer.close()
        await observer.wait_for(1, observer.requests)
        await asyncio.sleep(0.05)  # room for a wrong report about /silent
    assert [(event.path, event.status) for event in observer.requests] == [("/stream", 200)]


# --- WebSocket hand-off ---------------------------------------------------------------
WS_HEAD = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
FRAME = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # masked text "Hello"


class Recorder(asyncio.Protocol):
    """Stands in for the WebSocket side: collects what arrives after the hand-off."""

    def __init__(self, trailing: bytes) -> None:
        self.data = bytearray(trailing)
        self.grew = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.grew.set()

    async def wait_for(self, size: int) -> bytes:
        while len(self.data) < size:
            self.grew.clear()
            await asyncio.wait_for(self.grew.wait(), TIMEOUT)
        return bytes(self.data)


class FakeUpgrade:
    def __init__(self) -> None:
        self.calls: asyncio.Queue[tuple[Any, RequestHead, bytes, ConnectionContext, bool]]
        self.calls = asyncio.Queue()
        self.recorder: Recorder | None = None

    def __call__(
        self, transport: asyncio.Transport, head: RequestHead, trailing: bytes, ctx: Any
    ) -> None:
        self.calls.put_nowait((transport, head, trailing, ctx, transport.is_reading()))
        self.recorder = Recorder(trailing)
        transport.set_protocol(self.recorder)
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")


@pytest.fixture
def fake_upgrade() -> FakeUpgrade:
    return FakeUpgrade()


async def test_upgrade_hands_over_head_and_trailing_bytes(
    http: str, fake_upgrade: FakeUpgrade
) -> None:
    async with serve_http(echo_app, http=http, upgrade=fake_upgrade) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(WS_HEAD + FRAME)
        transport, head, trailing, ctx, reading = await asyncio.wait_for(
            fake_upgrade.calls.get(), TIMEOUT
        )
        assert head.method == "GET" and head.path == "/chat" and head.query_string == b"room=1"
        assert Headers(head.headers)["Sec-WebSocket-Key"] == "dGhlIHNhbXBsZSBub25jZQ=="
        assert trailing == FRAME
        assert reading
        assert ctx.info.client is not None and ctx.info.server == ("127.0.0.1", srv.port)
        assert not any(isinstance(c, HttpProtocol) for c in srv.state.connections)
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        transport.close()
        writer.close()


async def test_upgrade_waits_for_earlier_pipelined_responses(
    http: str, fake_upgrade: FakeUpgrade
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await respond(send, b"first")

    async with serve_http(app, http=http, upgrade=fake_upgrade) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request() + WS_HEAD + FRAME[:4])
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        writer.write(FRAME[4:])  # arrives while the upgrade waits its turn
        await writer.drain()
        release.set()
        assert (await read_response(reader)).body == b"first"
        transport, head, trailing, _ctx, reading = await asyncio.wait_for(
            fake_upgrade.calls.get(), TIMEOUT
        )
        assert head.path == "/chat"
        assert reading
        assert FRAME.startswith(trailing)
        # Every byte behind the head reaches the WebSocket side, in order.
        assert fake_upgrade.recorder is not None
        assert await fake_upgrade.recorder.wait_for(len(FRAME)) == FRAME
        transport.close()
        writer.close()


async def test_non_websocket_upgrade_is_plain_http(http: str, fake_upgrade: FakeUpgrade) -> None:
    async with serve_http(echo_app, http=http, upgrade=fake_upgrade) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request("GET", "/h2", "Connection: Upgrade", "Upgrade: h2c") + request())
        assert (await read_response(reader)).body == b"GET /h2  "
        assert (await read_response(reader)).body == b"GET /  "
        assert fake_upgrade.calls.empty()
        writer.close()


async def test_connection_registers_and_unregisters(http: str) -> None:
    async with serve_http(echo_app, http=http) as srv:
        reader, writer = await open_raw(srv.port)
        writer.write(request())
        await read_response(reader)
        assert isinstance(only_connection(srv.state), HttpProtocol)
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(srv.state.connections.wait_empty(), TIMEOUT)
