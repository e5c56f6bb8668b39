"""Request smuggling and header abuse, through the real CLI on both parsers.

Each malformed request goes on a fresh raw socket to `asgiws --http h11`
and to `asgiws --http httptools`.  Both must answer the same status (400
unless RFC 9112 names another), close the connection, and never hand the
request to the app, which records every request that reaches it whole.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import ServerProcess

PARSERS = ("h11", "httptools")
H = b"Host: example.com\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def post(target: bytes, *lines: bytes, body: bytes = b"") -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\n" + H + b"".join(lines) + b"\r\n" + body


def get(target: bytes, *lines: bytes, line_end: bytes = b"\r\n") -> bytes:
    head = b"GET " + target + b" HTTP/1.1" + line_end + H.replace(b"\r\n", line_end)
    return head + b"".join(lines) + line_end


# (case, the bytes, the status both parsers must answer)
REFUSED: list[tuple[str, bytes, int]] = [
    # body framing (RFC 9112 6)
    ("cl-and-te", post(b"/s", b"Content-Length: 5\r\n", CHUNKED, body=b"0\r\n\r\n"), 400),
    ("te-and-cl", post(b"/s", CHUNKED, b"Content-Length: 5\r\n", body=b"0\r\n\r\n"), 400),
    (
        "duplicate-cl-same",
        post(b"/s", b"Content-Length: 3\r\nContent-Length: 3\r\n", body=b"abc"),
        400,
    ),
    (
        "duplicate-cl-differ",
        post(b"/s", b"Content-Length: 3\r\nContent-Length: 4\r\n", body=b"abcd"),
        400,
    ),
    ("comma-joined-cl", post(b"/s", b"Content-Length: 3, 3\r\n", body=b"abc"), 400),
    ("cl-with-sign", post(b"/s", b"Content-Length: +3\r\n", body=b"abc"), 400),
    ("cl-negative", post(b"/s", b"Content-Length: -1\r\n"), 400),
    ("cl-hex", post(b"/s", b"Content-Length: 0x3\r\n", body=b"abc"), 400),
    ("te-unknown", post(b"/s", b"Transfer-Encoding: gzip\r\n"), 501),
    (
        "te-chunked-twice",
        post(b"/s", b"Transfer-Encoding: chunked, chunked\r\n", body=b"0\r\n\r\n"),
        501,
    ),
    (
        "te-chunked-not-last",
        post(b"/s", b"Transfer-Encoding: chunked, gzip\r\n", body=b"0\r\n\r\n"),
        501,
    ),
    ("te-in-http10", b"POST /s HTTP/1.0\r\n" + CHUNKED + b"\r\n0\r\n\r\n", 400),
    (
        "te-space-before-colon",
        post(b"/s", b"Transfer-Encoding : chunked\r\n", body=b"0\r\n\r\n"),
        400,
    ),
    # chunks (RFC 9112 7.1)
    ("chunk-size-not-hex", post(b"/s", CHUNKED, body=b"zz\r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-size-negative", post(b"/s", CHUNKED, body=b"-3\r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x", post(b"/s", CHUNKED, body=b"0x3\r\nabc\r\n0\r\n\r\n"), 400),
    (
        "chunk-size-overflow",
        post(b"/s", CHUNKED, body=b"1" + b"0" * 16 + b"\r\nabc\r\n0\r\n\r\n"),
        400,
    ),
    ("chunk-size-trailing-space", post(b"/s", CHUNKED, body=b"3 \r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-ext-control", post(b"/s", CHUNKED, body=b'3;a="\x01"\r\nabc\r\n0\r\n\r\n'), 400),
    ("chunk-ext-bare-lf", post(b"/s", CHUNKED, body=b"3;a\nb\r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-bare-lf", post(b"/s", CHUNKED, body=b"3\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-data-too-long", post(b"/s", CHUNKED, body=b"3\r\nabcX\r\n0\r\n\r\n"), 400),
    ("trailer-obs-fold", post(b"/s", CHUNKED, body=b"0\r\nX: a\r\n b\r\n\r\n"), 400),
    ("te-in-trailers", post(b"/s", CHUNKED, body=b"0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400),
    ("cl-in-trailers", post(b"/s", CHUNKED, body=b"0\r\nContent-Length: 5\r\n\r\n"), 400),
    ("chunk-ext-whitespace", post(b"/s", CHUNKED, body=b"3 ;a=b\r\nabc\r\n0\r\n\r\n"), 400),
    ("two-hosts-http10", b"GET /s HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("absolute-form-bad-host", b"GET http://a{b/s HTTP/1.1\r\n" + H + b"\r\n", 400),
    # line ends (RFC 9112 2.2)
    ("bare-lf", get(b"/s", line_end=b"\n"), 400),
    ("bare-lf-in-head", b"GET /s HTTP/1.1\r\n" + H + b"X: y\n\r\n", 400),
    ("bare-cr-in-head", b"GET /s HTTP/1.1\r\n" + H + b"X: a\rY: b\r\n\r\n", 400),
    ("bare-cr-request-line", b"GET /s HTTP/1.1\r" + H + b"\r\n", 400),
    ("empty-line-first", b"\r\n" + get(b"/s"), 400),
    # field lines (RFC 9112 5, RFC 9110 5.5)
    ("obs-fold-space", get(b"/s", b"X: a\r\n b\r\n"), 400),
    ("obs-fold-tab", get(b"/s", b"X: a\r\n\tb\r\n"), 400),
    ("whitespace-before-first-field", b"GET /s HTTP/1.1\r\n " + H + b"\r\n", 400),
    ("space-before-colon", get(b"/s", b"X : a\r\n"), 400),
    ("tab-before-colon", get(b"/s", b"X\t: a\r\n"), 400),
    ("nul-in-name", get(b"/s", b"X\x00Y: a\r\n"), 400),
    ("nul-in-value", get(b"/s", b"X: a\x00b\r\n"), 400),
    ("control-in-value", get(b"/s", b"X: a\x01b\r\n"), 400),
    ("del-in-value", get(b"/s", b"X: a\x7fb\r\n"), 400),
    ("control-in-name", get(b"/s", b"X\x01: a\r\n"), 400),
    ("empty-name", get(b"/s", b": a\r\n"), 400),
    ("no-colon", get(b"/s", b"Xa\r\n"), 400),
    ("no-host", b"GET /s HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", get(b"/s", b"Host: other\r\n"), 400),
    # request line (RFC 9112 3)
    ("target-without-slash", get(b"s"), 400),
    ("asterisk-for-get", get(b"*"), 400),
    ("authority-form-for-get", get(b"example.com:80"), 400),
    ("target-with-space", get(b"/a b"), 400),
    ("target-with-control", get(b"/a\x01b"), 400),
    ("target-non-ascii", get(b"/caf\xc3\xa9"), 400),
    ("two-spaces", b"GET  /s HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("http-0.9-line", b"GET /s\r\n\r\n", 400),
    ("bad-version", b"GET /s HTTP/1.x\r\n" + H + b"\r\n", 400),
    ("http-2.0", b"GET /s HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("method-not-token", get(b"/s").replace(b"GET", b"G@T"), 400),
    # sizes: the default head limit is 16 KiB (h11_max_incomplete_event_size)
    ("request-line-too-long", get(b"/" + b"a" * 17000), 414),
    ("header-too-long", get(b"/s", b"X: " + b"a" * 17000 + b"\r\n"), 431),
    ("too-many-headers", get(b"/s", *[b"X-%d: y\r\n" % i for i in range(2400)]), 431),
]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[ServerProcess, Path]]]:
    running: dict[str, tuple[ServerProcess, Path]] = {}
    try:
        for parser in PARSERS:
            record = tmp_path_factory.mktemp(parser) / "requests.jsonl"
            record.touch()
            server = ServerProcess(
                "tests.security.apps:recorder",
                ("--http", parser),
                {"ASGIWS_TEST_RECORD": str(record)},
            )
            running[parser] = (server, record)
            server.wait_ready()
        yield running
    finally:
        for server, _ in running.values():
            server.finish()


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send `data`, read until the server closes; (what came back, closed?)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received, True
            except TimeoutError:
                return received, False
            if not chunk:
                return received, True
            received += chunk
        return received, False


def statuses(response: bytes) -> list[int]:
    # Bodies here are "ok" or a status phrase: a status line cannot hide in one.
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", response)]


def recorded(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.mark.parametrize(
    ("data", "status"), [(d, s) for _, d, s in REFUSED], ids=[c for c, _, _ in REFUSED]
)
def test_malformed_request_is_refused_the_same_by_both_parsers(
    servers: dict[str, tuple[ServerProcess, Path]], data: bytes, status: int
) -> None:
    answers = {}
    for parser, (server, record) in servers.items():
        before = len(recorded(record))
        response, closed = exchange(server.port, data)
        assert statuses(response) == [status], f"{parser}: {response[:200]!r}"
        assert closed, f"{parser}: connection left open after {status}"
        assert len(recorded(record)) == before, f"{parser}: the app got the request"
        answers[parser] = response.split(b"\r\n")[0], response.partition(b"\r\n\r\n")[2]
    assert answers["h11"] == answers["httptools"]


def test_a_good_request_before_a_smuggled_one_is_served_alone(
    servers: dict[str, tuple[ServerProcess, Path]],
) -> None:
    """The classic CL.TE attack: a front end that reads Content-Length sees
    one request; a back end reading chunked would see a second one."""
    smuggled = post(b"/first", b"Content-Length: 4\r\n", body=b"body") + post(
        b"/second", b"Content-Length: 6\r\n", CHUNKED, body=b"0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"
    )
    for parser, (server, record) in servers.items():
        before = len(recorded(record))
        response, closed = exchange(server.port, smuggled)
        assert statuses(response) == [200, 400], parser
        assert closed
        paths = [r["path"] for r in recorded(record)[before:]]
        assert paths == ["/first"], f"{parser}: {paths}"


def test_absolute_form_is_served_with_the_target_s_host(
    servers: dict[str, tuple[ServerProcess, Path]],
) -> None:
    """RFC 9112 3.2.2: a server MUST accept the absolute form, and "MUST
    ignore the received Host header field ... and instead use the host
    information of the request-target"."""
    data = b"GET http://target.example:8080/p?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"
    for parser, (server, record) in servers.items():
        before = len(recorded(record))
        response, _ = exchange(server.port, data + get(b"/last", b"Connection: close\r\n"))
        assert statuses(response) == [200, 200], parser
        first = recorded(record)[before]
        headers = cast("list[list[str]]", first["headers"])
        assert first["path"] == "/p"
        assert ["host", "target.example:8080"] in headers
        assert ["host", "other.example"] not in headers


def test_unknown_method_is_the_one_known_difference(
    servers: dict[str, tuple[ServerProcess, Path]],
) -> None:
    """llhttp parses only the methods it knows; h11 passes any token to the
    app (docs/SECURITY.md).  A method is not framing: nothing else differs."""
    data = b"get /m HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    answers = {
        parser: statuses(exchange(server.port, data)[0]) for parser, (server, _) in servers.items()
    }
    assert answers == {"h11": [200], "httptools": [400]}
