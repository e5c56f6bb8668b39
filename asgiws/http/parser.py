"""The request-parser face: bytes in, a few small events out.

`HttpProtocol` is written once against this face; two implementations sit
behind it:

- `H11Parser`: the pure-Python h11 state machine (the default);
- `HttptoolsParser`: llhttp through httptools (`--http httptools`, or `auto`
  when httptools is importable), for speed.

Everything that is policy rather than parsing (how the target splits into
path and query, keep-alive, 100-continue, WebSocket upgrade, the head size
limit, the Host rule) lives in `start_request()`, shared by both, so the two
parsers cannot drift apart.

Both parse eagerly: pipelined requests come out one after another in one
`feed()`.  After a `RequestStarted(upgrade=True)` a parser produces nothing
more; `trailing_data()` then holds every byte received behind that head.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import unquote_to_bytes

import h11

from asgiws.http.wire import CheckedHead, WireCheck
from asgiws.types import Headers as RawHeaders
from asgiws.types import RequestHead
from asgiws.websocket.headers import Headers

if TYPE_CHECKING:
    from asgiws.config import Config


# --- events ----------------------------------------------------------------------
# The two made per request (and per body chunk) are named tuples: immutable
# like the frozen dataclasses below, but built in a third of the time (a
# frozen dataclass sets each field through object.__setattr__).
class RequestStarted(NamedTuple):
    """A complete request head.  `upgrade` means a WebSocket upgrade request."""

    head: RequestHead
    keep_alive: bool
    expect_continue: bool
    upgrade: bool


class BodyChunk(NamedTuple):
    data: bytes


@dataclass(frozen=True, slots=True)
class RequestEnded:
    pass


@dataclass(frozen=True, slots=True)
class ParseFailed:
    """The input is not HTTP we accept; answer `status` and close."""

    status: int
    reason: str


ParserEvent = RequestStarted | BodyChunk | RequestEnded | ParseFailed

_REQUEST_ENDED = RequestEnded()
_new_tuple = tuple.__new__


class RequestParser(Protocol):
    def feed(self, data: bytes) -> list[ParserEvent]:
        """Parse `data`; return the events it completes, in order.  After a
        `ParseFailed` or an upgrade the parser must not be fed again."""

    def trailing_data(self) -> bytes:
        """Bytes received behind the head of a WebSocket upgrade request."""

    def close(self) -> None:
        """The connection is done with the parser: drop what it holds."""


# --- policy shared by both parsers -----------------------------------------------
def split_target(target: bytes) -> tuple[bytes, str, bytes]:
    """(raw_path, path, query_string) of a request target.

    The absolute form (`GET http://host/p?q`, RFC 9112 3.2.2) is reduced to
    its path so the app sees the same scope either way.  The path is
    percent-decoded to bytes and read as UTF-8 with replacement, which is
    what uvicorn's `urllib.parse.unquote` does for ASCII targets, and also
    survives raw non-ASCII bytes in the target.
    """
    raw_path, _, query = target.partition(b"?")
    # (Slices and partition here rather than startswith and `in`: on bytes
    # those parse their arguments the slow way, and this runs per request.)
    if raw_path[:1] != b"/":
        scheme_end = raw_path.find(b"://")
        if scheme_end > 0:
            slash = raw_path.find(b"/", scheme_end + 3)
            raw_path = raw_path[slash:] if slash >= 0 else b"/"
    if raw_path.partition(b"%")[1]:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    return raw_path, path, query


def absolute_form_authority(target: bytes) -> bytes | None:
    """The authority of an absolute-form target (`http://host:port/p`), else None."""
    if target.startswith(b"/"):
        return None
    scheme, sep, rest = target.partition(b"://")
    if not sep or not scheme:
        return None
    end = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    return rest[:end]


def start_request(checked: CheckedHead, max_head: int) -> RequestStarted | ParseFailed:
    """Build the one `RequestStarted` for a head the wire check read, or
    refuse the head.  The fields were read once, by `WireCheck`; both
    parsers take the head from there, so they cannot disagree on it."""
    if checked.size > max_head:
        return ParseFailed(431, "Request header fields too large")
    http_version = checked.http_version
    # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status
    # code to any HTTP/1.1 request message that lacks a Host header field
    # and to any request message that contains more than one Host header".
    hosts = checked.hosts
    if hosts > 1 or (http_version == "1.1" and not hosts):
        return ParseFailed(400, "Missing or repeated Host header")
    # (A transfer coding other than chunked is the wire check's 501.)
    target = checked.target
    headers = checked.headers
    if target[:1] == b"/":
        # split_target() for the origin form, written out: once per request.
        raw_path, _, query = target.partition(b"?")
        if raw_path.partition(b"%")[1]:
            path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        else:
            path = raw_path.decode("utf-8", "replace")
    else:
        raw_path, path, query = split_target(target)
        authority = absolute_form_authority(target)
        if authority is not None:
            # RFC 9112 3.2.2: with an absolute-form target the server "MUST
            # ignore the received Host header field (if any) and instead use
            # the host information of the request-target", so the app sees
            # one authority.
            headers = [(n, authority if n == b"host" else v) for n, v in headers]
    connection = checked.connection
    if http_version == "1.1":
        keep_alive = "close" not in connection
    else:
        # An HTTP/1.0 client keeps the connection only when it asks to.
        keep_alive = "keep-alive" in connection and "close" not in connection
    # RFC 9110 7.8: a sender of Upgrade "MUST also send an 'upgrade' connection
    # option"; llhttp and uvicorn upgrade only then, and so do we.
    upgrade = "upgrade" in connection and "websocket" in checked.upgrade
    # tuple.__new__ straight: a named tuple's own __new__ is a Python
    # function that only forwards to it (one frame per request each).
    head = _new_tuple(
        RequestHead,
        (
            checked.method.decode("ascii", "replace"),  # method
            raw_path,
            path,
            query,  # query_string
            http_version,
            headers,
        ),
    )
    return _new_tuple(RequestStarted, (head, keep_alive, checked.expect_continue, upgrade))


class WireChecked:
    """What both parsers share: they sit behind `WireCheck`, so each parser
    sees only bytes that keep to RFC 9112's grammar, and the first byte that
    does not is answered the same way whichever parser runs (see `wire.py`)."""

    def __init__(self, max_head: int) -> None:
        self._wire = WireCheck(max_head)
        self._max_head = max_head
        self._refused = False
        self._stopped = False  # after an upgrade or a refused head: nothing more
        self._upgrade_trailing: bytes | None = None  # see feed()

    def _parse(self, data: bytes) -> list[ParserEvent]:
        raise NotImplementedError

    def feed(self, data: bytes) -> list[ParserEvent]:
        if self._refused:
            return []
        wire = self._wire
        good, error = wire.check(data)
        head = wire.whole
        if head is not None:
            # `good` is the one request `head` (no body), or the head of a
            # WebSocket upgrade and the frames behind it: the wire check
            # read it all, the parser behind would only say so again
            # (`WireCheck.whole`), so it never sees these bytes and stays
            # at its message boundary.  (Written out here: per request.)
            wire.whole = None
            if self._stopped:
                return []
            started = start_request(head, self._max_head)
            if type(started) is not RequestStarted:
                self._stopped = True
                return [started]
            if started.upgrade:
                self._stopped = True
                self._upgrade_trailing = good[good.find(b"\r\n\r\n") + 4 :]
                return [started]
            return [started, _REQUEST_ENDED]
        events = self._parse(good) if good else []
        if error is None:
            return events
        self._refused = True
        last = events[-1] if events else None
        if not (
            isinstance(last, ParseFailed) or (isinstance(last, RequestStarted) and last.upgrade)
        ):
            events.append(ParseFailed(error.status, error.reason))
        return events


# --- h11 ---------------------------------------------------------------------------
class H11Parser(WireChecked):
    """h11 used only as a request parser.

    The response is framed by our own code (`framing.py`), so h11 never sees
    it; once a request ends, a fresh `h11.Connection` takes the remaining bytes.
    That keeps one code path for responses and lets requests pipeline.
    """

    # Made on first use, no __init__ of its own: a connection whose requests
    # are all whole heads (WireCheck.whole), a WebSocket handshake's for
    # one, never needs h11.
    _conn: h11.Connection | None = None

    def _new_connection(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)

    def _parse(self, data: bytes) -> list[ParserEvent]:
        if self._stopped:
            return []
        conn = self._conn
        if conn is None:
            conn = self._conn = self._new_connection()
        conn.receive_data(data)
        events: list[ParserEvent] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._stopped = True
                events.append(ParseFailed(exc.error_status_hint, str(exc)))
                return events
            if isinstance(event, h11.Data):
                events.append(BodyChunk(bytes(event.data)))
            elif isinstance(event, h11.Request):
                started = start_request(self._wire.heads.popleft(), self._max_head)
                events.append(started)
                if isinstance(started, ParseFailed) or started.upgrade:
                    self._stopped = True
                    return events
            elif isinstance(event, h11.EndOfMessage):
                events.append(_REQUEST_ENDED)
                trailing, _closed = conn.trailing_data
                conn = self._conn = self._new_connection()
                if trailing:
                    conn.receive_data(trailing)
            else:  # NEED_DATA, PAUSED (cannot happen after a fresh start), closed
                return events

    def trailing_data(self) -> bytes:
        if self._upgrade_trailing is not None:
            return self._upgrade_trailing
        return b"" if self._conn is None else bytes(self._conn.trailing_data[0])

    def close(self) -> None:
        self._stopped = True


# --- httptools -----------------------------------------------------------------
class _HeadRefused(Exception):
    """Raised from a callback to stop llhttp; the event is already recorded."""


class HttptoolsParser(WireChecked):
    """llhttp through httptools: callbacks collect events, `feed` returns them.

    llhttp only frames the messages here: the head (request line, fields,
    its size) comes from the wire check in front, so llhttp is given no
    per-field or URL callbacks (each is a Python call from C).
    """

    # Class-level defaults, no __init__ of its own (one Python call per
    # connection fewer): set on the instance when they change.
    # llhttp's parser is made on first use: a connection whose requests are
    # all whole heads (WireCheck.whole), a WebSocket handshake's for one,
    # never needs it.
    _parser: Any = None
    _events: list[ParserEvent] = []  # (replaced, never changed in place, before a feed)
    _head: CheckedHead | None = None  # of the request being read
    _upgrading = False
    _resuming_body = False
    _trailing = b""

    # llhttp callbacks ------------------------------------------------------------
    def on_headers_complete(self) -> None:
        if self._resuming_body:
            self._resuming_body = False
            return
        self._head = head = self._wire.heads.popleft()
        started = start_request(head, self._max_head)
        if isinstance(started, ParseFailed):
            self._events.append(started)
            self._stopped = True
            raise _HeadRefused
        self._events.append(started)
        self._upgrading = started.upgrade

    def on_body(self, body: bytes) -> None:
        self._events.append(BodyChunk(body))

    def on_message_complete(self) -> None:
        if not self._upgrading:
            self._events.append(_REQUEST_ENDED)

    # the face ------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[ParserEvent]:
        if self._stopped:
            return []
        events: list[ParserEvent] = []
        self._events = events
        parser = self._parser
        if parser is None:
            parser = self._parser = _httptools().HttpRequestParser(self)
        try:
            parser.feed_data(data)
        except _httptools().HttpParserUpgrade as exc:
            offset = int(exc.args[0])
            if self._upgrading:
                self._stopped = True
                self._trailing = data[offset:]
            else:
                # Upgrade to something other than WebSocket (h2c, CONNECT):
                # served as plain HTTP; llhttp stops there, so a new parser
                # carries on with the bytes behind it.
                rest = data[offset:]
                self._parser = _httptools().HttpRequestParser(self)
                body_head = None if self._head is None else _body_only_head(self._head.headers)
                if body_head is not None:
                    # llhttp skipped the body of the upgrade request; a
                    # made-up head with the same framing lets the new parser
                    # read it, and its RequestStarted is swallowed.
                    if events and isinstance(events[-1], RequestEnded):
                        events.pop()
                    self._resuming_body = True
                    rest = body_head + rest
                events.extend(self._parse(rest))
                self._events = events
            return events
        except _httptools().HttpParserError as exc:
            if not self._stopped:
                self._stopped = True
                message = str(exc)
                # llhttp refuses an unknown coding with this message; both
                # Content-Length and Transfer-Encoding is a 400 ("can't be
                # present with"), as the wire check answers it.
                status = 501 if "Invalid `Transfer-Encoding`" in message else 400
                events.append(ParseFailed(status, message or "Invalid HTTP request"))
            return events
        return events

    def trailing_data(self) -> bytes:
        if self._upgrade_trailing is not None:
            return self._upgrade_trailing
        return self._trailing

    def close(self) -> None:
        # llhttp's parser holds our callbacks and we hold it: a reference
        # cycle that would otherwise keep every finished connection's parser
        # (and the last request's head) for the cyclic garbage collector.
        self._stopped = True
        self._parser = None
        self._events = []
        self._head = None


def _body_only_head(headers: RawHeaders) -> bytes | None:
    """A request head that frames a body the way `headers` do, or None."""
    index = Headers(headers)
    if index.get_list("transfer-encoding"):
        return b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    length = index.get("content-length", "").strip()
    if length not in ("", "0"):
        head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + "\r\n\r\n"
        return head.encode("latin-1")
    return None


@cache
def _httptools() -> Any:
    """The httptools module, imported on first use (an import statement per
    connection would cost an import-system lookup each time)."""
    import httptools

    return httptools


def httptools_available() -> bool:
    try:
        _httptools()
    except ImportError:
        return False
    return True


def make_parser(config: Config) -> RequestParser:
    """The parser `config.http` asks for ("auto": httptools when importable)."""
    max_head = config.h11_max_incomplete_event_size
    if config.http == "httptools":
        _httptools()  # (ImportError here, with the connection, when it is missing)
        return HttptoolsParser(max_head)
    if config.http == "auto" and httptools_available():
        return HttptoolsParser(max_head)
    return H11Parser(max_head)
