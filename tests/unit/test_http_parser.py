"""The parser face: both implementations give the same events for the same bytes."""

from __future__ import annotations

import pytest

from asgiws.config import Config
from asgiws.http.parser import (
    BodyChunk,
    H11Parser,
    HttptoolsParser,
    ParseFailed,
    ParserEvent,
    RequestEnded,
    RequestParser,
    RequestStarted,
    make_parser,
    split_target,
)

MAX_HEAD = 16 * 1024


def new_parser(kind: str, max_head: int = MAX_HEAD) -> RequestParser:
    return H11Parser(max_head) if kind == "h11" else HttptoolsParser(max_head)


@pytest.fixture(params=["h11", "httptools"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def merged(events: list[ParserEvent]) -> list[ParserEvent]:
    """Join adjacent body chunks: how bytes are split must not matter."""
    out: list[ParserEvent] = []
    for event in events:
        if isinstance(event, BodyChunk) and out and isinstance(out[-1], BodyChunk):
            out[-1] = BodyChunk(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def feed_all(parser: RequestParser, *chunks: bytes) -> list[ParserEvent]:
    events: list[ParserEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return merged(events)


PIPELINE = (
    b"GET /a%20b/%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-Thing: One\r\n\r\n"
    b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    b"GET /close HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
)


def test_pipelined_requests_give_heads_bodies_and_ends(kind: str) -> None:
    events = feed_all(new_parser(kind), PIPELINE)
    assert [type(e).__name__ for e in events] == [
        "RequestStarted", "RequestEnded",
        "RequestStarted", "BodyChunk", "RequestEnded",
        "RequestStarted", "BodyChunk", "RequestEnded",
        "RequestStarted", "RequestEnded",
    ]  # fmt: skip
    first = events[0]
    assert isinstance(first, RequestStarted)
    head = first.head
    assert head.method == "GET"
    assert head.raw_path == b"/a%20b/%C3%A9"
    assert head.path == "/a b/é"
    assert head.query_string == b"x=1&y=%20"
    assert head.http_version == "1.1"
    assert head.headers == [(b"host", b"h"), (b"x-thing", b"One")]
    assert first.keep_alive and not first.expect_continue and not first.upgrade
    assert events[3] == BodyChunk(b"hello")
    assert events[6] == BodyChunk(b"abcde")
    last = events[8]
    assert isinstance(last, RequestStarted) and not last.keep_alive


def test_any_split_of_the_bytes_gives_the_same_events(kind: str) -> None:
    whole = feed_all(new_parser(kind), PIPELINE)
    for size in (1, 2, 7, 64):
        parser = new_parser(kind)
        chunks = [PIPELINE[i : i + size] for i in range(0, len(PIPELINE), size)]
        assert feed_all(parser, *chunks) == whole, size


def test_both_parsers_agree() -> None:
    assert feed_all(new_parser("h11"), PIPELINE) == feed_all(new_parser("httptools"), PIPELINE)


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_follows_version_and_connection_header(
    kind: str, head: bytes, keep_alive: bool
) -> None:
    (started, _) = feed_all(new_parser(kind), head)
    assert isinstance(started, RequestStarted)
    assert started.keep_alive is keep_alive


def test_expect_continue_is_reported(kind: str) -> None:
    events = new_parser(kind).feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"
    )
    assert isinstance(events[0], RequestStarted) and events[0].expect_continue


def test_websocket_upgrade_stops_and_keeps_trailing_bytes(kind: str) -> None:
    parser = new_parser(kind)
    head = (
        b"GET /ws?t=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    events = parser.feed(head + frame)
    assert len(events) == 1
    started = events[0]
    assert isinstance(started, RequestStarted) and started.upgrade
    assert started.head.path == "/ws" and started.head.query_string == b"t=1"
    assert parser.trailing_data() == frame


def test_upgrade_without_connection_upgrade_is_plain_http(kind: str) -> None:
    events = new_parser(kind).feed(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")
    assert isinstance(events[0], RequestStarted) and not events[0].upgrade
    assert events[1:] == [RequestEnded()]


def test_h2c_upgrade_is_served_as_http_and_parsing_continues(kind: str) -> None:
    data = (
        b"GET /1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    events = feed_all(new_parser(kind), data)
    assert [type(e) for e in events] == [RequestStarted, RequestEnded] * 2
    assert isinstance(events[2], RequestStarted) and events[2].head.path == "/2"
    assert not events[0].upgrade  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 3\r\n\r\nabc", b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
    ids=["length", "chunked"],
)
def test_h2c_upgrade_with_a_body_keeps_the_body(kind: str, framing: bytes) -> None:
    data = (
        b"POST /1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        + framing
        + b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    events = feed_all(new_parser(kind), data)
    assert [type(e) for e in events] == [
        RequestStarted, BodyChunk, RequestEnded, RequestStarted, RequestEnded
    ]  # fmt: skip
    assert events[1] == BodyChunk(b"abc")
    assert isinstance(events[3], RequestStarted) and events[3].head.path == "/2"


def test_absolute_form_target_is_reduced_to_its_path(kind: str) -> None:
    events = new_parser(kind).feed(b"GET http://example.com/p/q?z HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(events[0], RequestStarted)
    assert (events[0].head.raw_path, events[0].head.query_string) == (b"/p/q", b"z")


def test_split_target() -> None:
    assert split_target(b"/a%2Fb?c=d?e") == (b"/a%2Fb", "/a/b", b"c=d?e")
    assert split_target(b"/%FF") == (b"/%FF", "/\ufffd", b"")
    assert split_target(b"*") == (b"*", "*", b"")
    assert split_target(b"http://host") == (b"/", "/", b"")


def test_complete_head_over_the_limit_is_431(kind: str) -> None:
    parser = new_parser(kind, max_head=1024)
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    assert events == [ParseFailed(431, events[0].reason)]  # type: ignore[union-attr]
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n") == []


def test_endless_head_is_cut_off_at_the_limit(kind: str) -> None:
    """A head that never ends must not be buffered without bound."""
    parser = new_parser(kind, max_head=1024)
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ")
    assert events == []
    for _ in range(10):
        events = parser.feed(b"a" * 500)
        if events:
            break
    assert len(events) == 1 and isinstance(events[0], ParseFailed)
    assert events[0].status == 431


def test_head_just_under_the_limit_is_accepted(kind: str) -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 900 + b"\r\n\r\n"
    assert len(head) < 1024
    events = feed_all(
        new_parser(kind, max_head=1024), *[head[i : i + 100] for i in range(0, 1000, 100)]
    )
    assert isinstance(events[0], RequestStarted)


def test_big_body_is_not_mistaken_for_a_big_head(kind: str) -> None:
    parser = new_parser(kind, max_head=1024)
    body = b"x" * 5000
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + body
    events = feed_all(parser, data + b"GET /next HTTP/1.1\r\nHo", b"st: h\r\n\r\n")
    assert [type(e) for e in events] == [
        RequestStarted, BodyChunk, RequestEnded, RequestStarted, RequestEnded
    ]  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ],
)
def test_malformed_requests_are_400(kind: str, data: bytes) -> None:
    events = new_parser(kind).feed(data)
    assert isinstance(events[-1], ParseFailed)
    assert events[-1].status == 400


def test_unsupported_transfer_encoding_is_501(kind: str) -> None:
    events = new_parser(kind).feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    )
    assert isinstance(events[-1], ParseFailed)
    assert events[-1].status == 501


@pytest.mark.parametrize(
    ("http", "expected"),
    [("h11", H11Parser), ("httptools", HttptoolsParser), ("auto", HttptoolsParser)],
)
def test_make_parser_follows_config(http: str, expected: type) -> None:
    assert isinstance(make_parser(Config(app="x:y", http=http)), expected)
