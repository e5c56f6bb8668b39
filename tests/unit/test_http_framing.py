"""Response framing decided as h11 decides it."""

from __future__ import annotations

import pytest

from asgiws.http.framing import Framing, ResponseHead, build_response_head

DEFAULTS = [(b"server", b"asgiws"), (b"date", b"today")]


def head(
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    method: str = "GET",
    http_version: str = "1.1",
    keep_alive: bool = True,
) -> ResponseHead:
    return build_response_head(
        status,
        headers or [],
        method=method,
        http_version=http_version,
        keep_alive=keep_alive,
        default_headers=DEFAULTS,
    )


def lines(h: ResponseHead) -> list[bytes]:
    return h.data.split(b"\r\n")


def test_content_length_is_used_and_enforced() -> None:
    h = head(headers=[(b"Content-Length", b"5")])
    assert lines(h) == [
        b"HTTP/1.1 200 OK", b"server: asgiws", b"date: today", b"Content-Length: 5", b"", b""
    ]  # fmt: skip
    assert h.encoder.framing is Framing.LENGTH and h.keep_alive
    assert h.encoder.encode(b"abc", True) == [b"abc"]
    with pytest.raises(RuntimeError, match="longer"):
        h.encoder.encode(b"abc", False)
    short = head(headers=[(b"content-length", b"5")])
    with pytest.raises(RuntimeError, match="shorter"):
        short.encoder.encode(b"abc", False)


def test_no_length_on_http11_is_chunked() -> None:
    h = head()
    assert b"transfer-encoding: chunked" in lines(h)
    assert h.encoder.encode(b"abc", True) == [b"3\r\n", b"abc", b"\r\n"]
    assert h.encoder.encode(b"", False) == [b"0\r\n\r\n"]


def test_no_length_on_http10_is_delimited_by_close() -> None:
    h = head(http_version="1.0", keep_alive=True)
    assert h.encoder.framing is Framing.UNTIL_CLOSE
    assert not h.keep_alive and b"connection: close" in lines(h)
    assert b"transfer-encoding: chunked" not in lines(h)


def test_http10_keep_alive_with_length_says_keep_alive() -> None:
    h = head(headers=[(b"content-length", b"0")], http_version="1.0", keep_alive=True)
    assert h.keep_alive and b"connection: keep-alive" in lines(h)


def test_head_gets_get_headers_but_no_body() -> None:
    h = head(method="HEAD")
    assert b"transfer-encoding: chunked" in lines(h)
    assert h.encoder.encode(b"abc", False) == []
    assert h.keep_alive


@pytest.mark.parametrize("status", [204, 304, 101])
def test_bodyless_statuses(status: int) -> None:
    h = head(status)
    assert h.encoder.framing is Framing.NONE
    assert b"transfer-encoding: chunked" not in lines(h)


def test_app_headers_override_defaults() -> None:
    h = head(headers=[(b"Server", b"mine"), (b"content-length", b"0")])
    assert b"server: asgiws" not in lines(h) and b"Server: mine" in lines(h)
    assert b"date: today" in lines(h)


def test_closing_replaces_the_connection_header() -> None:
    h = head(headers=[(b"connection", b"keep-alive"), (b"content-length", b"0")], keep_alive=False)
    assert not h.keep_alive
    assert b"connection: close" in lines(h) and b"connection: keep-alive" not in lines(h)


def test_app_connection_close_ends_keep_alive() -> None:
    assert not head(headers=[(b"Connection", b"close"), (b"content-length", b"0")]).keep_alive


def test_app_chunked_transfer_encoding_is_honoured() -> None:
    h = head(headers=[(b"transfer-encoding", b"chunked"), (b"content-length", b"3")])
    assert h.encoder.framing is Framing.CHUNKED
    assert not any(line.startswith(b"content-length") for line in lines(h))


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x", b"a\r\nInjected: 1")],
        [(b"bad name", b"v")],
        [("str", "headers")],
        [(b"only-one",)],
        [(b"content-length", b"abc")],
        [(b"content-length", b"1"), (b"content-length", b"2")],
        [(b"transfer-encoding", b"gzip")],
    ],
)
def test_invalid_headers_are_refused(headers: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(RuntimeError):
        head(headers=headers)


@pytest.mark.parametrize("status", [99, 1000, "200", None])
def test_invalid_status_is_refused(status: object) -> None:
    with pytest.raises(RuntimeError):
        head(status)  # type: ignore[arg-type]


def test_a_repeated_header_set_gives_the_same_head_and_a_fresh_encoder() -> None:
    app_headers = [(b"content-type", b"text/plain"), (b"content-length", b"3")]
    first, second = head(headers=app_headers), head(headers=list(app_headers))
    assert first.data == second.data
    assert first.encoder is not second.encoder
    first.encoder.encode(b"abc", False)  # used up the first response's length...
    assert second.encoder.encode(b"abc", False) == [b"abc"]  # ...not the second's


def test_new_default_headers_are_used_at_once() -> None:
    app_headers = [(b"content-length", b"0")]
    before = head(headers=app_headers)
    after = build_response_head(
        200,
        app_headers,
        method="GET",
        http_version="1.1",
        keep_alive=True,
        default_headers=[(b"server", b"asgiws"), (b"date", b"tomorrow")],
    )
    assert b"date: today" in lines(before)
    assert b"date: tomorrow" in lines(after) and b"date: today" not in lines(after)


def test_headers_as_lists_generators_and_bytearrays_are_accepted() -> None:
    expected = head(headers=[(b"x-a", b"1"), (b"content-length", b"0")]).data
    as_lists = head(headers=[[b"x-a", b"1"], [b"content-length", b"0"]])  # type: ignore[list-item]
    as_bytearrays = head(headers=[(bytearray(b"x-a"), b"1"), (b"content-length", b"0")])  # type: ignore[list-item]
    generated = build_response_head(
        200,
        ((name, value) for name, value in [(b"x-a", b"1"), (b"content-length", b"0")]),
        method="GET",
        http_version="1.1",
        keep_alive=True,
        default_headers=DEFAULTS,
    )
    assert as_lists.data == as_bytearrays.data == generated.data == expected


def test_non_iterable_headers_are_refused() -> None:
    with pytest.raises(RuntimeError, match="not iterable"):
        head(headers=42)  # type: ignore[arg-type]
