"""The wire check's C head scanner reads every request head exactly as the
Python scanner does: the same parts where the head keeps to the grammar,
None (the line-by-line check words the fault) wherever it does not."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asgiws.http as http_pkg
from asgiws.http import wire
from asgiws.http.wire import ScannedHead, WireCheck, python_scan_head
from tests.unit.c_build import build_extension

Scan = Callable[[bytes, int, int], ScannedHead | None]

SOURCE = Path(http_pkg.__file__).parent / "_speedups.c"


@pytest.fixture(scope="module")
def c_speedups(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return build_extension(SOURCE, "asgiws.http._speedups", tmp_path_factory.mktemp("c"))


@pytest.fixture(scope="module")
def c_scan_head(c_speedups: ModuleType) -> Scan:
    scan: Scan = c_speedups.scan_head
    return scan


def both(scan: Scan, head: bytes) -> ScannedHead | None:
    """Each scanner on `head` (ending in the empty line): equal answers."""
    end = head.index(b"\r\n\r\n") + 2
    expected = python_scan_head(head, 0, end)
    assert scan(head, 0, end) == expected
    return expected


@pytest.mark.parametrize(
    ("head", "parts"),
    [
        (
            b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nUser-AGENT: \t curl/8 \t\r\n\r\n",
            (
                b"GET",
                b"/a?b",
                b"1",
                b"1",
                [(b"host", b"x"), (b"x-empty", b""), (b"user-agent", b"curl/8")],
                21 + 9 + 11 + 20,
                [(b"host", b"x")],
            ),
        ),
        # no fields at all
        (b"OPTIONS * HTTP/1.0\r\n\r\n", (b"OPTIONS", b"*", b"1", b"0", [], 22, [])),
        # tabs and obs-text inside a value are kept
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\tb \xe9\xff\r\n\r\n",
            (
                b"GET",
                b"/",
                b"1",
                b"1",
                [(b"host", b"x"), (b"x", b"a\tb \xe9\xff")],
                18 + 9 + 11,
                [(b"host", b"x")],
            ),
        ),
        # every field framing and policy read is set apart, in order
        (
            b"POST / HTTP/1.1\r\nEXPECT: 100-continue\r\nHost: x\r\nX: 1\r\n"
            b"Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n"
            b"Transfer-Encoding: chunked\r\nHosts: y\r\n\r\n",
            (
                b"POST",
                b"/",
                b"1",
                b"1",
                fields := [
                    (b"expect", b"100-continue"),
                    (b"host", b"x"),
                    (b"x", b"1"),
                    (b"connection", b"Upgrade"),
                    (b"upgrade", b"websocket"),
                    (b"content-length", b"0"),
                    (b"transfer-encoding", b"chunked"),
                    (b"hosts", b"y"),
                ],
                wire.head_size(b"POST", b"/", fields),
                [pair for pair in fields if pair[0] in wire.FRAMING_POLICY_FIELDS],
            ),
        ),
    ],
)
def test_a_clean_head_is_split_into_its_parts(
    c_scan_head: Scan, head: bytes, parts: ScannedHead
) -> None:
    assert both(c_scan_head, head) == parts


def test_the_c_scanner_sets_apart_every_framing_field_and_no_other(c_scan_head: Scan) -> None:
    """The C scanner's list of names is its own copy of FRAMING_POLICY_FIELDS:
    each name there (in any case), and no name close to one, is set apart
    by both scanners alike."""
    names = sorted(wire.FRAMING_POLICY_FIELDS)
    near = [b"hosts", b"hos", b"x-upgrade", b"connectio", b"content-lengths", b"expec"]
    lines = [n.upper() + b": v" for n in names] + [n + b": v" for n in near]
    head = b"GET / HTTP/1.1\r\n" + b"\r\n".join(lines) + b"\r\n\r\n"
    scanned = both(c_scan_head, head)
    assert scanned is not None
    assert [name for name, _ in scanned[6]] == names


@pytest.mark.parametrize(
    "head",
    [
        b" GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # space before the method
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",  # two spaces
        b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",  # not a token
        b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",  # DEL in the target
        b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
        b"GET / HTTP/11\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        b"GET / http/1.1\r\nHost: x\r\n\r\n",
        b"GET /\r\nHost: x\r\n\r\n",  # HTTP/0.9
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",  # whitespace before the colon
        b"GET / HTTP/1.1\r\n: x\r\n\r\n",  # empty name
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",  # no colon
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",  # bare CR
        b"GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",  # NUL
        b"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n",  # DEL
        b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",  # obs-fold
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    ],
)
def test_heads_off_the_grammar_are_left_to_the_line_check(c_scan_head: Scan, head: bytes) -> None:
    assert both(c_scan_head, head) is None


def test_the_window_is_respected(c_scan_head: Scan) -> None:
    """A head in the middle of a buffer (pipelining): only [pos, end) is read."""
    first = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /2 HTTP/1.1\r\nHost: y\r\n\r\n"
    stream = first + second
    start = len(first)
    end = stream.index(b"\r\n\r\n", start) + 2
    assert c_scan_head(stream, start, end) == python_scan_head(stream, start, end)
    assert c_scan_head(stream, start, end) == (
        b"GET",
        b"/2",
        b"1",
        b"1",
        [(b"host", b"y")],
        wire.head_size(b"GET", b"/2", [(b"host", b"y")]),
        [(b"host", b"y")],
    )
    with pytest.raises(ValueError):
        c_scan_head(stream, 0, len(stream) + 1)
    with pytest.raises(TypeError):
        c_scan_head(bytearray(stream), 0, end)  # type: ignore[arg-type]


def test_common_names_and_values_are_the_shared_objects(
    c_speedups: ModuleType, c_scan_head: Scan
) -> None:
    """Names and values in SHARED_FIELD_BYTES come back as those objects from
    either scanner, names matched case-insensitively and values exactly, so
    that a WebSocket's request headers, kept for its life, hold no copies."""
    c_speedups.share(tuple(wire.SHARED_FIELD_BYTES))
    head = (
        b"GET /chat HTTP/1.1\r\nHOST: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nX-Other: websocket\r\nAccept: WEBSOCKET\r\n\r\n"
    )
    shared = wire.SHARED_FIELD_BYTES
    for scan in (c_scan_head, python_scan_head):
        scanned = scan(head, 0, head.index(b"\r\n\r\n") + 2)
        assert scanned is not None
        identities = [(n is shared.get(n), v is shared.get(v)) for n, v in scanned[4]]
        assert identities == [
            (True, False),  # host: x
            (True, True),  # upgrade: websocket
            (True, True),  # connection: Upgrade
            (True, True),  # sec-websocket-version: 13
            (False, True),  # x-other: websocket
            (True, False),  # accept: WEBSOCKET (values match exactly)
        ]
    with pytest.raises(TypeError):
        c_speedups.share(("not bytes",))
    with pytest.raises(TypeError):
        c_speedups.share((b"x" * 64,))


_LINE_BYTES = st.sampled_from(
    [
        *(b"GET", b"/", b" ", b"HTTP/1.1", b"HTTP/1.0", b"\r\n", b"\r", b"\n", b":", b"\t"),
        *(b"Host", b"x-Y", b"a", b"\x00", b"\x7f", b"\x80", b"\x1f", b"(", b"*", b"HTTP/2.0"),
    ]
)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(_LINE_BYTES, max_size=40), tail=st.binary(max_size=40))
def test_both_scanners_agree_on_any_head(
    c_scan_head: Scan, parts: list[bytes], tail: bytes
) -> None:
    head = b"".join(parts) + tail + b"\r\n\r\n"
    both(c_scan_head, head)


@pytest.mark.parametrize(
    "stream",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81",
    ],
)
def test_the_wire_check_answers_alike_with_either_scanner(
    c_scan_head: Scan, stream: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(scan: Scan) -> tuple[object, ...]:
        monkeypatch.setattr(wire, "scan_head", scan)
        check = WireCheck(1024)
        good, error = check.check(stream)
        head = check.whole or (check.heads[0] if check.heads else None)
        fields = None if head is None else (head.method, head.target, head.headers, head.hosts)
        return good, error, fields

    assert run(c_scan_head) == run(python_scan_head)


def test_an_older_build_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C scanner built before `share()` returns heads without their size
    and framing fields: the wire check reads with the Python scanner then."""
    older = ModuleType("asgiws.http._speedups")
    older.scan_head = python_scan_head  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "asgiws.http._speedups", older)
    monkeypatch.setattr(http_pkg, "_speedups", older, raising=False)
    monkeypatch.setattr(wire, "extensions_enabled", lambda: True)
    assert wire._c_scan_head() is None
    older.share = lambda names: None  # type: ignore[attr-defined]
    assert wire._c_scan_head() is python_scan_head
