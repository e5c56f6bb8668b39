"""The pieces of the client that need no socket: URI parsing, the request
and response through h11 (`ResponseReader`), the reconnection delays and
which errors are retried."""

from __future__ import annotations

import asyncio
import itertools
import ssl

import h11
import pytest

from asgiws.client import (
    MAX_RESPONSE_BODY,
    MAX_RESPONSE_HEAD,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidStatusCode,
    Response,
    ResponseReader,
    backoff_delays,
    is_transient,
)
from asgiws.datastructures import Headers
from asgiws.uri import InvalidURI, WebSocketURI, parse_uri
from asgiws.websocket.handshake import client_request_headers


@pytest.mark.parametrize(
    ("uri", "expected", "host_header"),
    [
        ("ws://example.com", WebSocketURI(False, "example.com", 80, "/"), "example.com"),
        ("WSS://Example.com/", WebSocketURI(True, "example.com", 443, "/"), "example.com"),
        ("ws://h:8080/a/b?x=1&y", WebSocketURI(False, "h", 8080, "/a/b?x=1&y"), "h:8080"),
        ("wss://h:80/", WebSocketURI(True, "h", 80, "/"), "h:80"),
        ("ws://[::1]:9000/", WebSocketURI(False, "::1", 9000, "/"), "[::1]:9000"),
        ("ws://h/?q", WebSocketURI(False, "h", 80, "/?q"), "h"),
        ("ws://h/caf\u00e9 x", WebSocketURI(False, "h", 80, "/caf%C3%A9%20x"), "h"),
        ("ws://h/%41%20", WebSocketURI(False, "h", 80, "/%41%20"), "h"),  # kept as is
        (
            "ws://b\u00fccher.de/",
            WebSocketURI(False, "b\u00fccher.de", 80, "/"),
            "xn--bcher-kva.de",
        ),
        (
            "ws://user:p%40ss@h/",
            WebSocketURI(False, "h", 80, "/", ("user", "p@ss")),
            "h",
        ),
    ],
)
def test_parse_uri(uri: str, expected: WebSocketURI, host_header: str) -> None:
    parsed = parse_uri(uri)
    assert parsed == expected
    assert parsed.host_header == host_header


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://example.com/", "ws:// or wss://"),
        ("example.com:80", "ws:// or wss://"),
        ("/just/a/path", "no scheme"),
        ("ws:///path", "no host"),
        ("ws://", "no host"),
        ("ws://h:99999/", "bad port"),
        ("ws://h:abc/", "bad port"),
        ("ws://h:0/", "port 0"),
        ("ws://h/#top", "fragment"),
        ("ws://h/#", "fragment"),
        ("ws://[::1/", "Invalid IPv6"),
    ],
)
def test_bad_uris(uri: str, reason: str) -> None:
    with pytest.raises(InvalidURI, match=reason) as caught:
        parse_uri(uri)
    assert isinstance(caught.value, ValueError)
    assert caught.value.uri == uri


KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def reader_for(*extra: tuple[bytes, bytes]) -> ResponseReader:
    headers = client_request_headers("h:8000", KEY, extra_headers=list(extra))
    return ResponseReader("/chat?x=1", headers)


def feed_bytewise(reader: ResponseReader, data: bytes) -> Response | None:
    """Any split of the bytes gives the same answer: here, one byte at a time."""
    for i in range(len(data)):
        response = reader.receive_data(data[i : i + 1])
        if response is not None:
            return response
    return None


def test_the_request_is_written_by_h11_with_our_headers_in_order() -> None:
    reader = reader_for((b"X-Token", b"t"))
    server = h11.Connection(h11.SERVER)
    server.receive_data(reader.request)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert request.method == b"GET" and request.target == b"/chat?x=1"
    assert request.headers.raw_items() == client_request_headers(
        "h:8000", KEY, extra_headers=[(b"X-Token", b"t")]
    )
    assert isinstance(server.next_event(), h11.EndOfMessage)


def test_a_101_with_frames_behind_it() -> None:
    frame = b"\x81\x05hello"
    response = feed_bytewise(
        reader := reader_for(),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Empty:\r\n"
        b"X-Pad:  a b \t\r\n\r\n" + frame,
    )
    assert response == Response(
        101, [(b"Upgrade", b"websocket"), (b"X-Empty", b""), (b"X-Pad", b"a b")]
    )
    # Fed byte by byte, the answer is complete with the head's last byte:
    # the frame is still to be read, by the connection that takes over.
    assert reader.trailing == b""
    reader = reader_for()
    assert reader.receive_data(b"HTTP/1.1 101 OK\r\n\r\n" + frame) == Response(101, [])
    assert reader.trailing == frame


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_a_refusal_with_its_body_after_an_interim_response(bytewise: bool) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nno \r\n5\r\ntoken\r\n0\r\n\r\n"
    )
    reader = reader_for()
    response = feed_bytewise(reader, answer) if bytewise else reader.receive_data(answer)
    assert response == Response(403, [(b"Transfer-Encoding", b"chunked")], b"no token")


def test_a_refusal_body_is_bounded() -> None:
    reader = reader_for()
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % (2 * MAX_RESPONSE_BODY)
    assert reader.receive_data(head) is None
    response = reader.receive_data(b"x" * (MAX_RESPONSE_BODY + 10))
    assert response is not None and response.body == b"x" * MAX_RESPONSE_BODY


def test_a_refusal_delimited_by_closing_ends_with_what_arrived() -> None:
    reader = reader_for()
    assert reader.receive_data(b"HTTP/1.0 503 Busy\r\n\r\ntry ") is None
    assert reader.receive_data(b"later") is None
    assert reader.refusal is not None
    assert reader.refused() == Response(503, [], b"try later")


def test_obsolete_line_folding_is_unfolded() -> None:
    # RFC 9112 5.2: a user agent "MUST replace each received obs-fold with
    # one or more SP octets prior to interpreting the field value".
    response = reader_for().receive_data(b"HTTP/1.1 101 OK\r\nA: b\r\n  c\r\n\r\n")
    assert response == Response(101, [(b"A", b"b c")])


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 101 OK",
        b"HTTP/1.1 1011 OK",
        b"HTTP/1.1 abc OK",
        b"ICY 200 OK",
        b"HTTP/1.1 101 OK\r\nno colon",
        b"HTTP/1.1 101 OK\r\nBad Name: x",
        b"HTTP/1.1 101 OK\r\n: no name",
        b"HTTP/1.1 101 OK\r\n folded first",
    ],
)
def test_malformed_response_heads(head: bytes) -> None:
    with pytest.raises(InvalidMessage, match="invalid HTTP response"):
        reader_for().receive_data(head + b"\r\n\r\n")


@pytest.mark.parametrize("complete", [True, False], ids=["whole", "incomplete"])
def test_a_head_larger_than_the_limit(complete: bool) -> None:
    head = b"HTTP/1.1 101 OK\r\nX-Big: " + b"a" * MAX_RESPONSE_HEAD + b"\r\n"
    with pytest.raises(InvalidMessage, match="larger than"):
        reader_for().receive_data(head + (b"\r\n" if complete else b""))


def test_a_request_h11_cannot_send_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        reader_for((b"X-A", b"1\r\nX-B: 2"))
    with pytest.raises(ValueError, match="cannot send"):
        reader_for((b"Bad Name", b"1"))


def test_backoff_delays_start_small_with_jitter_and_grow_to_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for draw, first in ((0.0, 0.1), (1.0, 1.0), (0.5, 0.55)):
        monkeypatch.setattr("asgiws.client.random.random", lambda draw=draw: draw)
        delays = list(itertools.islice(backoff_delays(), 20))
        assert delays[0] == pytest.approx(first)
        assert delays[1] == pytest.approx(first * 1.618)
        assert delays[-1] == 60.0
        assert all(b >= a for a, b in itertools.pairwise(delays))


def test_first_delays_differ_between_clients() -> None:
    firsts = {next(backoff_delays()) for _ in range(20)}
    assert len(firsts) > 1
    assert all(0.1 <= d <= 1.0 for d in firsts)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncio.TimeoutError(), True),
        (ssl.SSLCertVerificationError(), False),
        (InvalidStatus(500, Headers()), True),
        (InvalidStatus(503, Headers()), True),
        (InvalidStatus(403, Headers()), False),
        (InvalidStatus(404, Headers()), False),
        (InvalidMessage("garbage"), False),
        (InvalidHandshake("bad accept"), False),
        (InvalidURI("x", "no host"), False),
        (ValueError(), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_invalid_message_after_eof_is_transient() -> None:
    exc = InvalidMessage("closed during the handshake")
    exc.__cause__ = EOFError()
    assert is_transient(exc)


def test_websockets_10_exception_name() -> None:
    assert InvalidStatusCode is InvalidStatus
    exc = InvalidStatusCode(401, Headers([(b"WWW-Authenticate", b"Basic")]), b"no")
    assert (exc.status_code, exc.headers["www-authenticate"], exc.body) == (401, "Basic", b"no")
    assert isinstance(exc, InvalidHandshake)
