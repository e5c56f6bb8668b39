"""The pieces of the client that need no socket: URI parsing, the response
head parser, the reconnection delays and which errors are retried."""

from __future__ import annotations

import asyncio
import itertools
import ssl

import pytest

from asgiws.client import (
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidStatusCode,
    backoff_delays,
    is_transient,
    parse_response_head,
)
from asgiws.datastructures import Headers
from asgiws.uri import InvalidURI, WebSocketURI, parse_uri


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


def test_parse_response_head() -> None:
    status, headers = parse_response_head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Empty:\r\nX-Pad:  a b \t"
    )
    assert status == 101
    assert headers == [(b"Upgrade", b"websocket"), (b"X-Empty", b""), (b"X-Pad", b"a b")]
    assert parse_response_head(b"HTTP/1.0 404")[0] == 404


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
        b"HTTP/1.1 101 OK\r\nA: b\r\n folded",
    ],
)
def test_malformed_response_heads(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_response_head(head)


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
