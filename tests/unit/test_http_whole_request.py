"""A request the wire check reads whole in one go skips the parser behind it
(`WireCheck.whole`): the events must be the ones the parser gives for the
same bytes, for both parsers, and what the parsers disagree on (a method
llhttp does not know) or what needs them (a body) must still reach them."""

from __future__ import annotations

import pytest

from asgiws.http.parser import (
    BodyChunk,
    H11Parser,
    HttptoolsParser,
    ParseFailed,
    ParserEvent,
    RequestEnded,
    RequestParser,
    RequestStarted,
)
from tests.unit.test_http_parser import merged

MAX_HEAD = 16 * 1024
FRAME = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
UPGRADE = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"

# One request (or one upgrade head and what follows it) per case.
REQUESTS = {
    "get": b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
    "head": b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
    "post-empty": b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    "post-body": b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
    "chunked": (
        b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
    ),
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "absolute-form": b"GET http://t.example:8080/p HTTP/1.1\r\nHost: other\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "http-1.0": b"GET / HTTP/1.0\r\n\r\n",
    "expect": b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: h\r\n" + UPGRADE + b"\r\n",
    "upgrade-frame": b"GET /ws HTTP/1.1\r\nHost: h\r\n" + UPGRADE + b"\r\n" + FRAME,
    "upgrade-body": (
        b"GET /ws HTTP/1.1\r\nHost: h\r\n" + UPGRADE + b"Content-Length: 3\r\n\r\nabc" + FRAME
    ),
}


def new_parser(kind: str) -> RequestParser:
    return H11Parser(MAX_HEAD) if kind == "h11" else HttptoolsParser(MAX_HEAD)


def outcome(parser: RequestParser, *chunks: bytes) -> tuple[list[ParserEvent], bytes | None]:
    events: list[ParserEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    upgraded = any(isinstance(e, RequestStarted) and e.upgrade for e in events)
    return merged(events), parser.trailing_data() if upgraded else None


@pytest.mark.parametrize("kind", ["h11", "httptools"])
@pytest.mark.parametrize("data", REQUESTS.values(), ids=REQUESTS.keys())
def test_a_request_read_whole_gives_what_the_parser_gives(kind: str, data: bytes) -> None:
    # The head one byte at a time (its last with the rest): the wire check reads it
    # line by line and the parser reads every byte; all at once the head
    # may skip the parser.
    whole = outcome(new_parser(kind), data)
    end = data.index(b"\r\n\r\n") + 4
    split = [data[i : i + 1] for i in range(end - 1)] + [data[end - 1 :]]
    assert whole == outcome(new_parser(kind), *split)
    # A request behind another one is read the same way too.
    first = REQUESTS["get"]
    events, trailing = outcome(new_parser(kind), first, data)
    assert (events[2:], trailing) == whole


@pytest.mark.parametrize("data", REQUESTS.values(), ids=REQUESTS.keys())
def test_both_parsers_agree_on_whole_requests(data: bytes) -> None:
    def statuses(parser: RequestParser) -> tuple[list[object], bytes | None]:
        # (Each parser words some of its refusals its own way: the status counts.)
        events, trailing = outcome(parser, data)
        return [e.status if isinstance(e, ParseFailed) else e for e in events], trailing

    assert statuses(new_parser("h11")) == statuses(new_parser("httptools"))


def test_a_method_llhttp_does_not_know_still_reaches_it() -> None:
    """The one known difference of the two parsers (docs/SECURITY.md)
    stays: a keep-alive request whose head the wire check reads whole is
    still refused by llhttp when llhttp does not know its method."""
    data = b"get / HTTP/1.1\r\nHost: h\r\n\r\n"
    (failed,) = new_parser("httptools").feed(data)
    assert isinstance(failed, ParseFailed) and failed.status == 400
    started, _ended = new_parser("h11").feed(data)
    assert isinstance(started, RequestStarted) and started.head.method == "get"


def test_upgrade_head_read_whole_stops_the_parser() -> None:
    for kind in ("h11", "httptools"):
        parser = new_parser(kind)
        (started,) = parser.feed(REQUESTS["upgrade-frame"])
        assert isinstance(started, RequestStarted) and started.upgrade
        assert parser.trailing_data() == FRAME
        assert parser.feed(REQUESTS["get"]) == [], kind  # nothing after the upgrade


@pytest.mark.parametrize("kind", ["h11", "httptools"])
def test_a_body_that_comes_later_still_reaches_the_parser(kind: str) -> None:
    parser = new_parser(kind)
    head = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
    (started,) = parser.feed(head)
    assert isinstance(started, RequestStarted)
    assert merged(parser.feed(b"abc")) == [BodyChunk(b"abc"), RequestEnded()]
