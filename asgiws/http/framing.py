"""Response heads and body framing, decided the way h11 decides them.

Pure functions and one small encoder: no I/O, so the rules are tested alone.

- No body for 1xx, 204, 304, a 2xx answer to CONNECT, and any answer to HEAD
  (HEAD still gets the headers a GET would get, RFC 9110 9.3.2).
- `Transfer-Encoding: chunked` from the app: we chunk the app's bytes.
- `Content-Length` from the app: enforced; more or fewer bytes is an error.
- Neither: chunked for an HTTP/1.1 client; for HTTP/1.0 the body is
  delimited by closing the connection.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from asgiws.http.wire import lower_tokens
from asgiws.types import Headers

_INVALID_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# field-value: VCHAR, obs-text, SP and HTAB; CR, LF and NUL would let an app
# inject headers (RFC 9110 5.5).
_INVALID_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _status_lines() -> dict[int, bytes]:
    return {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


_STATUS_LINES = _status_lines()


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


class Framing(enum.Enum):
    NONE = "none"  # nothing goes on the wire after the head
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"  # HTTP/1.0 without Content-Length


class BodyEncoder:
    """Frames the body chunks of one response and checks Content-Length."""

    __slots__ = ("framing", "remaining")

    def __init__(self, framing: Framing, length: int = 0) -> None:
        self.framing = framing
        self.remaining = length

    def encode(self, data: bytes, more: bool) -> list[bytes]:
        """The byte strings to write for one `http.response.body` message."""
        framing = self.framing
        if framing is Framing.LENGTH:
            size = len(data)
            if size > self.remaining:
                raise RuntimeError("Response content longer than Content-Length")
            self.remaining -= size
            if not more and self.remaining:
                raise RuntimeError("Response content shorter than Content-Length")
            return [data] if size else []
        if framing is Framing.CHUNKED:
            parts = [b"%x\r\n" % len(data), data, b"\r\n"] if data else []
            if not more:
                parts.append(b"0\r\n\r\n")
            return parts
        if framing is Framing.UNTIL_CLOSE:
            return [data] if data else []
        return []


class ResponseHead(BodyEncoder):
    """The encoded head of one response, whether the connection stays open
    after it, and the encoder of its body: the head is that encoder itself
    (one object per response, not two)."""

    __slots__ = ("data", "keep_alive")

    def __init__(self, data: bytes, framing: Framing, length: int, keep_alive: bool) -> None:
        self.framing = framing
        self.remaining = length
        self.data = data
        self.keep_alive = keep_alive

    @property
    def encoder(self) -> BodyEncoder:
        """Frames this response's body (the head itself)."""
        return self


def _validated(headers: Any) -> list[tuple[bytes, bytes]]:
    result: list[tuple[bytes, bytes]] = []
    for item in headers:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise RuntimeError(f"Invalid HTTP header {item!r}: not a (name, value) pair") from None
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise RuntimeError(f"Invalid HTTP header {item!r}: name and value must be bytes")
        if not name or _INVALID_NAME.search(name):
            raise RuntimeError(f"Invalid HTTP header name {bytes(name)!r}")
        if _INVALID_VALUE.search(value):
            raise RuntimeError(f"Invalid HTTP header value {bytes(value)!r}")
        result.append((bytes(name), bytes(value)))
    return result


class _HeadPlan:
    """What a response head is apart from the server's default headers: the
    app's validated headers plus the framing ones we add, encoded, and how
    the body is framed.  Depends only on the cache key of `_plan_head`."""

    __slots__ = (
        "body_framing",
        "content_length",
        "encoded",
        "keep_alive",
        "last_defaults",
        "last_head",
        "names",
    )

    def __init__(
        self,
        encoded: bytes,
        names: frozenset[bytes],
        body_framing: Framing,
        content_length: int,
        keep_alive: bool,
    ) -> None:
        self.encoded = encoded
        self.names = names
        self.body_framing = body_framing
        self.content_length = content_length
        self.keep_alive = keep_alive
        # The whole head (status line, defaults, `encoded`) for the last
        # default-header list seen: the server swaps in a new list only when
        # Date changes, so a planned head is put together once a second.
        self.last_defaults: Headers | None = None
        self.last_head = b""


_PLAN_CACHE: dict[tuple[Any, ...], _HeadPlan] = {}
_PLAN_CACHE_SIZE = 512
"""Distinct (status, headers, request kind) combinations remembered.  Apps
answer most requests with a few header sets, so validating and encoding them
once pays off; the cache is emptied when full, so odd headers (a unique
cookie per response) cost a miss, never memory."""


def build_response_head(
    status: int,
    app_headers: Iterable[Any],
    *,
    method: str,
    http_version: str,
    keep_alive: bool,
    default_headers: Headers,
    own_headers: Sequence[tuple[bytes, bytes]] = (),
) -> ResponseHead:
    """Encode a response head for a request `method` / `http_version`.

    `keep_alive` says whether the request allows the connection to stay open;
    the result's `keep_alive` is False when this response ends it.  Raises
    RuntimeError for a response the app must not send.

    `own_headers` are the server's own, already valid (a 101's
    Sec-WebSocket-Accept): written after the defaults, never validated or
    remembered, and not consulted for framing.
    """
    # RFC 9110 15: "Values outside the range 100..599 are invalid."  The app
    # that sends one fails like any app error: a 500 goes out instead while
    # nothing was written yet (uvicorn does the same).
    # (A plain int, the common case, is told apart with one type() test.)
    if (
        type(status) is not int and (not isinstance(status, int) or isinstance(status, bool))
    ) or not 100 <= status <= 599:
        raise RuntimeError(f"Invalid HTTP status code {status!r}")
    try:
        items = tuple(app_headers)
    except TypeError:
        raise RuntimeError(f"Invalid HTTP headers {app_headers!r}: not iterable") from None
    key = (status, items, method, http_version, keep_alive)
    try:
        plan = _PLAN_CACHE.get(key)
    except TypeError:  # unhashable headers (lists, bytearrays): planned each time
        plan = _plan_head(status, items, method, http_version, keep_alive)
    else:
        if plan is None:
            plan = _plan_head(status, items, method, http_version, keep_alive)
            if len(_PLAN_CACHE) >= _PLAN_CACHE_SIZE:
                _PLAN_CACHE.clear()
            _PLAN_CACHE[key] = plan
    if plan.last_defaults is default_headers and not own_headers:
        data = plan.last_head
    else:
        default_names, defaults = _encoded_defaults(default_headers)
        if not plan.names.isdisjoint(default_names):  # the app overrides Server, Date...
            defaults = b"".join(
                b"%s: %s\r\n" % (name, value)
                for name, value in default_headers
                if name not in plan.names
            )
        if own_headers:
            defaults += b"".join(b"%s: %s\r\n" % (name, value) for name, value in own_headers)
        data = status_line(status) + defaults + plan.encoded
        if not own_headers:
            plan.last_defaults = default_headers
            plan.last_head = data
    # ResponseHead's __init__ written out (one Python call per response fewer).
    head = _new_response_head(ResponseHead)
    head.framing = plan.body_framing
    head.remaining = plan.content_length
    head.data = data
    head.keep_alive = plan.keep_alive
    return head


_new_response_head = object.__new__


def switching_protocols_head(
    default_headers: Headers, own_headers: Sequence[tuple[bytes, bytes]]
) -> bytes:
    """The head of a 101 that carries only the server's headers (the
    defaults, then `own_headers`, already valid): what `build_response_head`
    gives for status 101 without app headers, without planning it (a 101
    has no body and keeps the connection), as the opening handshake of
    every WebSocket needs it."""
    global _last_101
    seen, start = _last_101
    if seen is not default_headers:  # (the server's list changes once a second)
        start = _SWITCHING_PROTOCOLS + _encoded_defaults(default_headers)[1]
        _last_101 = (default_headers, start)
    # (map over bytes.__mod__: no Python frame per header, nor for a comprehension)
    return start + b"".join(map(_FIELD_LINE.__mod__, own_headers)) + b"\r\n"


_FIELD_LINE = b"%s: %s\r\n"
_last_101: tuple[Headers | None, bytes] = (None, b"")


_SWITCHING_PROTOCOLS = status_line(101)

_last_defaults: tuple[Headers | None, frozenset[bytes], bytes] = (None, frozenset(), b"")


def _encoded_defaults(default_headers: Headers) -> tuple[frozenset[bytes], bytes]:
    """Names and encoding of the default headers; remembered for the last
    list seen, since the server swaps in a new list only when Date changes."""
    global _last_defaults
    seen, names, encoded = _last_defaults
    if seen is not default_headers:
        names = frozenset(name for name, _ in default_headers)
        encoded = b"".join(b"%s: %s\r\n" % (name, value) for name, value in default_headers)
        _last_defaults = (default_headers, names, encoded)
    return names, encoded


def _plan_head(
    status: int, app_headers: Iterable[Any], method: str, http_version: str, keep_alive: bool
) -> _HeadPlan:
    headers = _validated(app_headers)
    names = {name.lower() for name, _ in headers}
    content_lengths: set[bytes] = set()
    transfer_codings: list[str] = []
    connection: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            content_lengths.add(value.strip())
        elif lname == b"transfer-encoding":
            transfer_codings.extend(lower_tokens(value))
        elif lname == b"connection":
            connection.extend(lower_tokens(value))

    close = not keep_alive or "close" in connection
    content_length = 0
    if status < 200 or status in (204, 304) or (method == "CONNECT" and status < 300):
        body_framing = Framing.NONE
    elif transfer_codings:
        if transfer_codings != ["chunked"]:
            raise RuntimeError("Only Transfer-Encoding: chunked is supported in responses")
        headers = [h for h in headers if h[0].lower() != b"content-length"]
        body_framing = Framing.CHUNKED
    elif content_lengths:
        if len(content_lengths) > 1:
            raise RuntimeError("Conflicting Content-Length headers")
        (text,) = content_lengths
        if not text.isdigit():
            raise RuntimeError(f"Invalid Content-Length {text!r}")
        body_framing = Framing.LENGTH
        content_length = int(text)
    elif http_version == "1.1":
        headers.append((b"transfer-encoding", b"chunked"))
        body_framing = Framing.CHUNKED
    else:
        body_framing = Framing.UNTIL_CLOSE
        close = close or method != "HEAD"
    if method == "HEAD":
        body_framing = Framing.NONE

    if close:
        if "close" not in connection:
            headers = [h for h in headers if h[0].lower() != b"connection"]
            headers.append((b"connection", b"close"))
    elif http_version != "1.1" and "keep-alive" not in connection:
        # An HTTP/1.0 client closes unless the answer says keep-alive.
        headers.append((b"connection", b"keep-alive"))

    parts: list[bytes] = []
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return _HeadPlan(b"".join(parts), frozenset(names), body_framing, content_length, not close)
