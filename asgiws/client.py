"""`connect(uri, **options)`: the websockets-library client API.

A thin face over the same `WebSocketConnection` the server uses: this module
only opens the TCP (or TLS) connection, performs the opening handshake with
the sans-I/O helpers of `asgiws.websocket.handshake`, then hands the transport
to a `WebSocketConnection` driven by a `ClientEngine`.

    async with connect("ws://localhost:8765") as websocket: ...
    websocket = await connect(uri)
    async for websocket in connect(uri): ...   # reconnects with backoff
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl as ssl_module
import urllib.parse
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from asgiws.config import Config
from asgiws.connection import WebSocketConnection
from asgiws.datastructures import Headers, HeadersLike, encode_headers
from asgiws.options import config_from_handler_options
from asgiws.uri import InvalidURI, WebSocketURI, parse_uri
from asgiws.websocket.connection import ClientEngine
from asgiws.websocket.deflate import DeflateOptions, DeflateParams, client_offer
from asgiws.websocket.errors import InvalidResponse
from asgiws.websocket.handshake import build_request, generate_key, validate_response

__all__ = [
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidStatusCode",
    "InvalidURI",
    "backoff_delays",
    "connect",
    "is_transient",
]

RawHeaders = list[tuple[bytes, bytes]]

MAX_RESPONSE_HEAD = 16 * 1024
"""Largest response head (status line and headers) accepted, in bytes."""
MAX_RESPONSE_BODY = 64 * 1024
"""Bytes of a refusal's body kept on InvalidStatus; the rest is not read."""
MAX_REDIRECTS = 10

# The websockets-style options a client accepts beside its own keywords; they
# are Config fields under another name (asgiws/options.py), declared once there.
CLIENT_OPTIONS = frozenset(
    {"max_size", "max_queue", "ping_interval", "ping_timeout", "close_timeout",
     "read_limit", "write_limit"}
)

default_logger = logging.getLogger("asgiws.client")


# --- exceptions ----------------------------------------------------------------------


class InvalidHandshake(Exception):
    """The opening handshake failed: the server refused it or answered wrongly."""


class InvalidMessage(InvalidHandshake):
    """The server's answer is not a readable HTTP response: malformed, larger
    than MAX_RESPONSE_HEAD, or cut short by the connection closing (then
    `__cause__` is an EOFError or the OSError that closed it)."""


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade with another status than 101."""

    def __init__(self, status_code: int, headers: Headers, body: bytes = b"") -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers
        self.body = body  # at most MAX_RESPONSE_BODY bytes of it


InvalidStatusCode = InvalidStatus
"""The websockets 10 name of InvalidStatus (same `status_code` and `headers`)."""


def is_transient(exc: BaseException) -> bool:
    """Whether `async for ... in connect()` retries after `exc`: the server may
    be restarting or overloaded.  Bad URIs, refusals (4xx), malformed answers
    and certificate errors are raised: trying again cannot help."""
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True  # refused, reset, unreachable, open_timeout
    if isinstance(exc, InvalidStatus):
        return 500 <= exc.status_code <= 599
    if isinstance(exc, InvalidMessage):
        return isinstance(exc.__cause__, (EOFError, OSError))
    return False


def backoff_delays(
    initial: float = 1.0, minimum: float = 0.1, factor: float = 1.618, maximum: float = 60.0
) -> Iterator[float]:
    """Seconds to wait before each reconnection attempt.

    The first delay is random between `minimum` and `initial` so that the
    many clients a server just dropped do not all come back at the same
    instant; each next one is `factor` times longer, up to `maximum`.
    """
    delay = minimum + random.random() * (initial - minimum)
    while True:
        yield delay
        delay = min(delay * factor, maximum)


# --- the response head -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """The server's answer to the upgrade request."""

    status: int
    headers: RawHeaders
    body: bytes = b""


def parse_header_lines(lines: Sequence[bytes]) -> RawHeaders:
    """`Name: value` lines into raw pairs; ValueError on a malformed line."""
    headers: RawHeaders = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            # RFC 7230 3.2.4: obs-fold is deprecated; a client MAY reject it.
            raise ValueError("obsolete line folding in a header")
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
            raise ValueError(f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip(b" \t")))
    return headers


def parse_response_head(head: bytes) -> tuple[int, RawHeaders]:
    """Status code and headers of a response head (without the blank line)."""
    status_line, *lines = head.split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"malformed status line {status_line[:80]!r}")
    if rest[3:4] not in (b"", b" "):
        raise ValueError(f"malformed status line {status_line[:80]!r}")
    return int(code), parse_header_lines(lines)


def _body_length(status: int, headers: RawHeaders) -> int | None:
    """Bytes of a refusal's body to read: a number, or None for "until the
    server closes" (capped at MAX_RESPONSE_BODY either way)."""
    if status < 200 or status in (204, 304):
        return 0
    encodings = Headers(headers).get_all("transfer-encoding")
    if encodings:
        return 0  # chunked: not worth decoding for an error message
    lengths = Headers(headers).get_all("content-length")
    if lengths:
        try:
            return min(int(lengths[0]), MAX_RESPONSE_BODY)
        except ValueError:
            return 0
    return None


class HandshakeProtocol(asyncio.Protocol):
    """Writes the upgrade request and reads the answer, bounded in size.

    After a 101 it pauses reading and keeps whatever arrived behind the head
    (`trailing`): a server may send its first frame in the same packet, and
    those bytes belong to the WebSocket connection that takes over the
    transport.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.trailing = bytearray()
        self.eof = False
        self.lost = False
        self.lost_exc: Exception | None = None
        self._buffer = bytearray()
        self._refusal: tuple[int, RawHeaders] | None = None  # a non-101 head, body pending
        self._body_wanted: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.response.done():
            # Behind a 101: frames for the connection that is taking over.
            self.trailing += data
            return
        buffer = self._buffer
        buffer += data
        if self._refusal is None:
            end = buffer.find(b"\r\n\r\n")
            if (end if end >= 0 else len(buffer)) > MAX_RESPONSE_HEAD:
                self._fail(InvalidMessage(f"response head larger than {MAX_RESPONSE_HEAD} bytes"))
                return
            if end < 0:
                return
            try:
                status, headers = parse_response_head(bytes(buffer[:end]))
            except ValueError as exc:
                self._fail(InvalidMessage(f"invalid HTTP response: {exc}"))
                return
            del buffer[: end + 4]
            if status == 101:
                self.trailing += buffer
                buffer.clear()
                # Until the connection object takes over, leave further bytes
                # in the socket rather than in this buffer.
                assert self.transport is not None
                self.transport.pause_reading()
                self.response.set_result(Response(status, headers))
                return
            self._refusal = (status, headers)
            self._body_wanted = _body_length(status, headers)
        wanted = MAX_RESPONSE_BODY if self._body_wanted is None else self._body_wanted
        if len(buffer) >= wanted:
            self._finish_refusal()

    def _finish_refusal(self) -> None:
        assert self._refusal is not None
        status, headers = self._refusal
        wanted = MAX_RESPONSE_BODY if self._body_wanted is None else self._body_wanted
        self.response.set_result(Response(status, headers, bytes(self._buffer[:wanted])))

    def _fail(self, exc: Exception) -> None:
        if not self.response.done():
            self.response.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _ended(self, cause: BaseException) -> None:
        if self.response.done():
            return
        if self._refusal is not None:
            self._finish_refusal()  # the body was "until the server closes"
            return
        exc = InvalidMessage("the server closed the connection during the opening handshake")
        exc.__cause__ = cause
        self.response.set_exception(exc)

    def eof_received(self) -> bool | None:
        self.eof = True
        self._ended(EOFError("EOF before the response head"))
        # After a 101, keep the transport (half-closed) for the connection
        # object: it may still have frames to read from `trailing` and a
        # close frame to send.
        return True if self.response.done() and self._refusal is None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_exc = exc
        self._ended(exc if exc is not None else EOFError("connection closed"))


# --- connect() ---------------------------------------------------------------------


class DefaultUserAgent:
    """`asgiws/<version>`, resolved when connect() is called (asgiws/__init__,
    which holds the version, may import this module)."""

    def __repr__(self) -> str:
        return "'asgiws/<version>'"


DEFAULT_USER_AGENT = DefaultUserAgent()


def _user_agent() -> str:
    from asgiws import __version__

    return f"asgiws/{__version__}"


class connect:  # the websockets name: used like a function
    """Open a WebSocket connection to `uri` (ws:// or wss://).

    `await connect(uri)` returns the connection; `async with connect(uri) as
    ws:` closes it on exit; `async for ws in connect(uri):` reconnects with
    exponential backoff after a lost connection or a transient error (see
    `is_transient`), and raises the others.

    Options besides the keywords: the websockets names `max_size`,
    `max_queue`, `ping_interval`, `ping_timeout`, `close_timeout`,
    `read_limit`, `write_limit`, and any `ws_*` Config field (e.g.
    `ws_deflate_client_max_window_bits`).  `ssl` is a `SSLContext`, or True
    for the default one; wss:// verifies certificates by default.
    `user_agent_header=None` sends no User-Agent.
    """

    # Reconnection delays of `async for` (see backoff_delays).
    BACKOFF_INITIAL = 1.0
    BACKOFF_MIN = 0.1
    BACKOFF_FACTOR = 1.618
    BACKOFF_MAX = 60.0

    def __init__(
        self,
        uri: str,
        *,
        subprotocols: Sequence[str] | None = None,
        extra_headers: HeadersLike | None = None,
        origin: str | None = None,
        compression: str | None = "deflate",
        open_timeout: float | None = 10.0,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        user_agent_header: str | DefaultUserAgent | None = DEFAULT_USER_AGENT,
        **options: Any,
    ) -> None:
        self.uri = uri
        self.wsuri = parse_uri(uri)
        if ssl is not None and ssl is not False and not self.wsuri.secure:
            raise ValueError("connect() got an ssl argument for a ws:// URI; use wss://")
        for name in options:
            if name not in CLIENT_OPTIONS and not name.startswith("ws_"):
                raise TypeError(f"connect() got an unexpected option {name!r}")
        self.config: Config = config_from_handler_options(compression=compression, **options)
        self.subprotocols = list(subprotocols) if subprotocols else None
        self.extra_headers = encode_headers(extra_headers)
        if isinstance(user_agent_header, DefaultUserAgent):
            user_agent_header = _user_agent()
        if user_agent_header is not None:
            self.extra_headers.append((b"User-Agent", user_agent_header.encode("latin-1")))
        self.origin = origin
        self.open_timeout = open_timeout
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.logger = logger if logger is not None else default_logger
        self.deflate_options = (
            DeflateOptions.from_config(self.config) if self.config.ws_per_message_deflate else None
        )
        self._connection: WebSocketConnection | None = None

    # --- the three ways to use it ---------------------------------------------------

    def __await__(self) -> Generator[Any, None, WebSocketConnection]:
        return self._connect().__await__()

    async def __aenter__(self) -> WebSocketConnection:
        self._connection = await self._connect()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        await self._connection.close()

    async def __aiter__(self) -> AsyncIterator[WebSocketConnection]:
        delays: Iterator[float] | None = None
        while True:
            try:
                connection = await self._connect()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if delays is None:
                    delays = backoff_delays(
                        self.BACKOFF_INITIAL, self.BACKOFF_MIN,
                        self.BACKOFF_FACTOR, self.BACKOFF_MAX,
                    )
                delay = next(delays)
                self.logger.info(
                    "connecting to %s failed (%s); retrying in %.1f s",
                    self.uri, str(exc) or type(exc).__name__, delay,
                )
                await asyncio.sleep(delay)
                continue
            delays = None  # connected: the next failure starts from a short delay again
            try:
                yield connection
            finally:
                # The loop body is done with this connection (it was lost, or
                # the body moved on): close it before connecting again.
                await connection.close()

    # --- opening -------------------------------------------------------------------

    async def _connect(self) -> WebSocketConnection:
        """Open the connection, following redirects; bounded by open_timeout."""
        if self.open_timeout is None:
            return await self._follow_redirects()
        try:
            return await asyncio.wait_for(self._follow_redirects(), self.open_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"timed out after {self.open_timeout} s opening {self.uri}"
            ) from None

    async def _follow_redirects(self) -> WebSocketConnection:
        wsuri, uri = self.wsuri, self.uri
        for _ in range(MAX_REDIRECTS):
            try:
                return await self._open(wsuri)
            except InvalidStatus as exc:
                location = exc.headers.get("location")
                if exc.status_code not in (301, 302, 303, 307, 308) or location is None:
                    raise
                uri = urllib.parse.urljoin(uri, location)
                new = parse_uri(uri)
                if wsuri.secure and not new.secure:
                    raise InvalidHandshake(f"refusing a redirect from wss:// to {uri}") from exc
                wsuri = new
        raise InvalidHandshake(f"more than {MAX_REDIRECTS} redirects")

    def _ssl_context(self, wsuri: WebSocketURI) -> ssl_module.SSLContext | None:
        if not wsuri.secure:
            return None
        if isinstance(self.ssl, ssl_module.SSLContext):
            return self.ssl
        # wss:// verifies the certificate and the host name unless told otherwise.
        return ssl_module.create_default_context()

    async def _open(self, wsuri: WebSocketURI) -> WebSocketConnection:
        key = generate_key()
        headers = list(self.extra_headers)
        if wsuri.user_info is not None:
            credentials = ":".join(wsuri.user_info).encode("utf-8")
            headers.append((b"Authorization", b"Basic " + base64.b64encode(credentials)))
        request = build_request(
            wsuri.host_header,
            wsuri.resource_name,
            key,
            subprotocols=self.subprotocols,
            extensions_value=(
                client_offer(self.deflate_options) if self.deflate_options is not None else None
            ),
            origin=self.origin,
            extra_headers=headers,
        )
        loop = asyncio.get_running_loop()
        context = self._ssl_context(wsuri)
        server_hostname = None
        if context is not None:
            server_hostname = self.server_hostname if wsuri is self.wsuri else None
            server_hostname = server_hostname or wsuri.host
        transport, handshake = await loop.create_connection(
            lambda: HandshakeProtocol(request),
            wsuri.host,
            wsuri.port,
            ssl=context,
            server_hostname=server_hostname,
        )
        try:
            response = await handshake.response
            if response.status != 101:
                raise InvalidStatus(response.status, Headers(response.headers), response.body)
            try:
                subprotocol, params = validate_response(
                    response.status,
                    response.headers,
                    key,
                    offered_subprotocols=self.subprotocols,
                    deflate_options=self.deflate_options,
                )
            except InvalidResponse as exc:
                raise InvalidHandshake(exc.reason) from exc
        except BaseException:
            # Refused, malformed, or cancelled by open_timeout: the socket goes.
            transport.abort()
            raise
        return self._take_over(transport, handshake, request, response, subprotocol, params, wsuri)

    def _take_over(
        self,
        transport: asyncio.Transport,
        handshake: HandshakeProtocol,
        request: bytes,
        response: Response,
        subprotocol: str | None,
        params: DeflateParams | None,
        wsuri: WebSocketURI,
    ) -> WebSocketConnection:
        """Hand the transport to a WebSocketConnection; synchronous, so that
        no byte can arrive between the two protocols."""
        config = self.config
        connection = WebSocketConnection(config, logger=self.logger)
        connection.path = wsuri.resource_name
        connection.request_headers = Headers(parse_header_lines(request.split(b"\r\n")[1:-2]))
        connection.response_headers = Headers(response.headers)
        connection.subprotocol = subprotocol
        transport.set_protocol(connection)
        connection.connection_made(transport)
        connection.attach_engine(ClientEngine(max_size=config.ws_max_size, deflate=params))
        trailing = bytes(handshake.trailing)
        if handshake.lost:
            # The server sent its answer (and maybe frames) and closed at once.
            if trailing:
                connection.data_received(trailing)
            if handshake.eof:
                connection.eof_received()
            connection.connection_lost(handshake.lost_exc)
            return connection
        transport.resume_reading()
        if trailing:
            connection.data_received(trailing)
        if handshake.eof and not connection.eof_received():
            transport.close()
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(
                "= connection open: %s (subprotocol %s, deflate %s)",
                self.uri, subprotocol, params is not None,
            )
        return connection
