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
import dataclasses
import logging
import random
import ssl as ssl_module
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import h11

from asgiws.connection import ConnectionOptions
from asgiws.datastructures import Headers, HeadersLike, encode_headers
from asgiws.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatus,
    InvalidStatusCode,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    RedirectHandshake,
    SecurityError,
)
from asgiws.extensions.negotiation import (
    accept_response,
    client_factories,
    client_offer_value,
    engine_arguments,
    extension_names,
)
from asgiws.extensions.permessage_deflate import deflate_options_of
from asgiws.options import connection_options_from_keywords
from asgiws.protocol import WebSocketClientProtocol
from asgiws.uri import WebSocketURI, parse_uri
from asgiws.websocket.connection import ClientEngine
from asgiws.websocket.deflate import client_offer
from asgiws.websocket.errors import InvalidResponse
from asgiws.websocket.handshake import (
    client_request_headers,
    generate_key,
    validate_response,
)

__all__ = [
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidStatusCode",
    "InvalidURI",
    "backoff_delays",
    "connect",
    "is_transient",
    "unix_connect",
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
# Keywords of loop.create_connection() that connect() passes on, as websockets does.
SOCKET_OPTIONS = frozenset(
    {"host", "port", "sock", "family", "proto", "flags", "local_addr",
     "happy_eyeballs_delay", "interleave", "ssl_handshake_timeout"}
)

default_logger = logging.getLogger("asgiws.client")


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


# --- the response -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """The server's answer to the upgrade request."""

    status: int
    headers: RawHeaders
    body: bytes = b""


class ResponseReader:
    """Our upgrade request and the server's answer, through h11 (sans-I/O).

    h11 writes the request (so that it expects the 101 that switches
    protocols) and parses the answer; `receive_data()` returns the
    `Response` once it is complete, else None.  Complete is the head of a
    101 (the bytes behind it, the WebSocket's first frames, are then in
    `trailing`), or a refusal's head and its body, of which at most
    MAX_RESPONSE_BODY bytes are kept.  A head larger than MAX_RESPONSE_HEAD,
    or anything that is not an HTTP/1.x response, raises InvalidMessage.
    """

    def __init__(self, resource: str, headers: RawHeaders) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD)
        try:
            request = self._h11.send(h11.Request(method="GET", target=resource, headers=headers))
            self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ValueError(f"cannot send this upgrade request: {exc}") from None
        assert request is not None  # (None only for a ConnectionClosed event)
        self.request = request
        self.refusal: h11.Response | None = None  # a final non-101 head, body pending
        self.trailing = b""
        self._body = bytearray()
        self._received = 0  # bytes given to h11
        self._parsed = 0  # bytes of them up to the end of the last head

    def receive_data(self, data: bytes) -> Response | None:
        self._received += len(data)
        self._h11.receive_data(data)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:  # h11: an incomplete head too long
                    too_large = self._head_too_large()
                    raise too_large from too_large.__cause__  # the SecurityError
                raise InvalidMessage(f"invalid HTTP response: {exc}") from None
            if isinstance(event, h11.InformationalResponse | h11.Response):
                self._check_head_size()
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self.trailing = self._h11.trailing_data[0]
                    return Response(101, event.headers.raw_items())
                # 100 Continue, 103 Early Hints: the answer is still to come.
            elif isinstance(event, h11.Response):
                self.refusal = event
            elif isinstance(event, h11.Data):
                self._body += event.data[: MAX_RESPONSE_BODY - len(self._body)]
                if len(self._body) >= MAX_RESPONSE_BODY:
                    return self.refused()
            elif isinstance(event, h11.EndOfMessage):
                return self.refused()
            else:  # NEED_DATA; PAUSED and ConnectionClosed cannot precede the answer
                return None

    def refused(self) -> Response:
        """The refusal with as much of its body as arrived (the server may
        close before the end, or delimit the body by closing)."""
        assert self.refusal is not None
        return Response(
            self.refusal.status_code, self.refusal.headers.raw_items(), bytes(self._body)
        )

    def _check_head_size(self) -> None:
        # h11 bounds only a head still incomplete; one that arrived whole in
        # a single read is measured here: what h11 consumed since the last head.
        parsed = self._received - len(self._h11.trailing_data[0])
        if parsed - self._parsed > MAX_RESPONSE_HEAD:
            raise self._head_too_large()
        self._parsed = parsed

    @staticmethod
    def _head_too_large() -> InvalidMessage:
        # websockets: a SecurityError (a limit kept for safety) behind InvalidMessage.
        limit = f"response head larger than {MAX_RESPONSE_HEAD} bytes"
        exc = InvalidMessage(f"did not receive a valid HTTP response: {limit}")
        exc.__cause__ = SecurityError(limit)
        exc.__suppress_context__ = True
        return exc


class HandshakeProtocol(asyncio.Protocol):
    """Writes the upgrade request and reads the answer (`ResponseReader`).

    After a 101 it pauses reading and keeps whatever arrived behind the head
    (`trailing`): a server may send its first frame in the same packet, and
    those bytes belong to the WebSocket connection that takes over the
    transport.
    """

    def __init__(self, reader: ResponseReader) -> None:
        self.reader = reader
        self.response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.trailing = bytearray()
        self.switched = False  # a 101 arrived
        self.eof = False
        self.lost = False
        self.lost_exc: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.reader.request)

    def data_received(self, data: bytes) -> None:
        if self.response.done():
            # Behind a 101: frames for the connection that is taking over.
            self.trailing += data
            return
        try:
            response = self.reader.receive_data(data)
        except InvalidMessage as exc:
            self._fail(exc)
            return
        if response is None:
            return
        if response.status == 101:
            self.switched = True
            self.trailing += self.reader.trailing
            # Until the connection object takes over, leave further bytes
            # in the socket rather than in this buffer.
            assert self.transport is not None
            self.transport.pause_reading()
        self.response.set_result(response)

    def _fail(self, exc: Exception) -> None:
        if not self.response.done():
            self.response.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _ended(self, cause: BaseException) -> None:
        if self.response.done():
            return
        if self.reader.refusal is not None:
            self.response.set_result(self.reader.refused())
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
        return True if self.switched else None

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
    `user_agent_header=None` sends no User-Agent.  `logger` is a Logger, an
    adapter or a logger's name (default `asgiws.client`).
    `create_protocol`: a `WebSocketClientProtocol` subclass (or a factory
    making one) for the connection object.  The socket keywords of
    `loop.create_connection` are passed on (`host`, `port` to connect
    elsewhere than the URI says, `sock`, `family`, `proto`, `flags`,
    `local_addr`, `happy_eyeballs_delay`, `interleave`, `ssl_handshake_timeout`).
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
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | str | None = None,
        user_agent_header: str | DefaultUserAgent | None = DEFAULT_USER_AGENT,
        create_protocol: Callable[..., WebSocketClientProtocol] | None = None,
        extensions: Sequence[Any] | None = None,
        **options: Any,
    ) -> None:
        self.uri = uri
        self.wsuri = parse_uri(uri)
        if ssl is not None and ssl is not False and not self.wsuri.secure:
            raise ValueError("connect() got an ssl argument for a ws:// URI; use wss://")
        self.socket_options = {k: options.pop(k) for k in SOCKET_OPTIONS if k in options}
        self.unix_path: str | None = options.pop("unix_path", None)
        for name in options:
            if name not in CLIENT_OPTIONS and not name.startswith("ws_"):
                raise TypeError(f"connect() got an unexpected option {name!r}")
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        self.create_protocol = create_protocol or WebSocketClientProtocol
        self.options: ConnectionOptions = connection_options_from_keywords(
            compression=compression,
            logger=logger if logger is not None else default_logger,
            **options,
        )
        deflate = deflate_options_of(extensions)
        if deflate is not None:  # a ClientPerMessageDeflateFactory's settings win
            self.options = dataclasses.replace(self.options, deflate=deflate)
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
        self.deflate_options = self.options.deflate
        # Any extension but permessage-deflate: the factories negotiate as a chain.
        self.extension_factories = client_factories(extensions, self.deflate_options)
        self._connection: WebSocketClientProtocol | None = None

    # --- the three ways to use it ---------------------------------------------------

    def __await__(self) -> Generator[Any, None, WebSocketClientProtocol]:
        return self._connect().__await__()

    async def __aenter__(self) -> WebSocketClientProtocol:
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

    async def __aiter__(self) -> AsyncIterator[WebSocketClientProtocol]:
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

    async def _connect(self) -> WebSocketClientProtocol:
        """Open the connection, following redirects; bounded by open_timeout."""
        if self.open_timeout is None:
            return await self._follow_redirects()
        try:
            return await asyncio.wait_for(self._follow_redirects(), self.open_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"timed out after {self.open_timeout} s opening {self.uri}"
            ) from None

    async def _follow_redirects(self) -> WebSocketClientProtocol:
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
                    raise SecurityError(f"refusing a redirect from wss:// to {uri}") from exc
                self.logger.info("redirected to %s", uri)
                wsuri = new
        raise SecurityError(f"more than {MAX_REDIRECTS} redirects") from RedirectHandshake(uri)

    def _ssl_context(self, wsuri: WebSocketURI) -> ssl_module.SSLContext | None:
        if not wsuri.secure:
            return None
        if isinstance(self.ssl, ssl_module.SSLContext):
            return self.ssl
        # wss:// verifies the certificate and the host name unless told otherwise.
        return ssl_module.create_default_context()

    async def _open(self, wsuri: WebSocketURI) -> WebSocketClientProtocol:
        key = generate_key()
        headers = list(self.extra_headers)
        if wsuri.user_info is not None:
            credentials = ":".join(wsuri.user_info).encode("utf-8")
            headers.append((b"Authorization", b"Basic " + base64.b64encode(credentials)))
        request_headers = client_request_headers(
            wsuri.host_header,
            key,
            subprotocols=self.subprotocols,
            extensions_value=self._extensions_offer(),
            origin=self.origin,
            extra_headers=headers,
        )
        reader = ResponseReader(wsuri.resource_name, request_headers)
        loop = asyncio.get_running_loop()
        context = self._ssl_context(wsuri)
        server_hostname = None
        if context is not None:
            server_hostname = self.server_hostname if wsuri is self.wsuri else None
            server_hostname = server_hostname or wsuri.host
        transport, handshake = await self._create_connection(
            loop, lambda: HandshakeProtocol(reader), wsuri, context, server_hostname
        )
        try:
            response = await handshake.response
            if response.status != 101:
                raise InvalidStatus(response.status, Headers(response.headers), response.body)
            factories = self.extension_factories
            checked = response.headers
            if factories:  # the chain's answer is checked by its factories, below
                checked = [h for h in checked if h[0].lower() != b"sec-websocket-extensions"]
            try:
                subprotocol, params = validate_response(
                    response.status,
                    checked,
                    key,
                    offered_subprotocols=self.subprotocols,
                    deflate_options=None if factories else self.deflate_options,
                )
            except InvalidResponse as exc:
                raise handshake_exception(exc, Headers(response.headers)) from exc
            engine_extensions: dict[str, Any] = {} if params is None else {"deflate": params}
            if factories:
                answer = Headers(response.headers).get_all("sec-websocket-extensions")
                engine_extensions = engine_arguments(accept_response(answer, factories))
        except BaseException:
            # Refused, malformed, or cancelled by open_timeout: the socket goes.
            transport.abort()
            raise
        return self._take_over(
            transport, handshake, request_headers, response, subprotocol, engine_extensions, wsuri
        )

    def _extensions_offer(self) -> str | None:
        """Our Sec-WebSocket-Extensions value: every factory of a chain, in
        order, or permessage-deflate from the options."""
        if self.extension_factories:
            return client_offer_value(self.extension_factories)
        if self.deflate_options is not None:
            return client_offer(self.deflate_options)
        return None

    async def _create_connection(
        self,
        loop: asyncio.AbstractEventLoop,
        factory: Callable[[], HandshakeProtocol],
        wsuri: WebSocketURI,
        context: ssl_module.SSLContext | None,
        server_hostname: str | None,
    ) -> tuple[asyncio.Transport, HandshakeProtocol]:
        kwargs = dict(self.socket_options)
        if context is not None:
            kwargs["ssl"] = context
            kwargs["server_hostname"] = server_hostname
        if wsuri is not self.wsuri:  # after a redirect: where the Location says
            kwargs.pop("host", None), kwargs.pop("port", None), kwargs.pop("sock", None)
        if self.unix_path is not None and wsuri is self.wsuri:
            connected = await loop.create_unix_connection(factory, self.unix_path, **kwargs)
        elif "sock" in kwargs:
            connected = await loop.create_connection(factory, **kwargs)
        else:
            kwargs.setdefault("host", wsuri.host)
            kwargs.setdefault("port", wsuri.port)
            connected = await loop.create_connection(factory, **kwargs)
        return connected

    def _take_over(
        self,
        transport: asyncio.Transport,
        handshake: HandshakeProtocol,
        request_headers: RawHeaders,
        response: Response,
        subprotocol: str | None,
        engine_extensions: dict[str, Any],
        wsuri: WebSocketURI,
    ) -> WebSocketClientProtocol:
        """Hand the transport to a WebSocketConnection; synchronous, so that
        no byte can arrive between the two protocols."""
        options = self.options
        connection = self.create_protocol(options)
        connection.path = wsuri.resource_name
        connection.request_headers = Headers(request_headers)
        connection.response_headers = Headers(response.headers)
        connection.subprotocol = subprotocol
        transport.set_protocol(connection)
        connection.connection_made(transport)
        connection.attach_engine(ClientEngine(max_size=options.max_size, **engine_extensions))
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
        connection.logger.info(
            "connection open: %s (subprotocol %s, extensions %s)",
            self.uri, subprotocol,
            extension_names(engine_extensions),
        )
        return connection


def unix_connect(path: str | None = None, uri: str = "ws://localhost/", **options: Any) -> connect:
    """`connect()` over the UNIX domain socket at `path` (or the connected
    UNIX socket given as `sock=`); `uri` gives the Host header and the path."""
    if path is not None:
        options["unix_path"] = path
    return connect(uri, **options)


def handshake_exception(exc: InvalidResponse, headers: Headers) -> InvalidHandshake:
    """The websockets exception for a 101 the handshake checks refused
    (asgiws.websocket.handshake.validate_response names the check in its reason)."""
    reason = exc.reason
    if "'Upgrade: websocket'" in reason:
        return InvalidUpgrade("Upgrade", ", ".join(headers.get_all("upgrade")) or None)
    if "'Connection: Upgrade'" in reason:
        return InvalidUpgrade("Connection", ", ".join(headers.get_all("connection")) or None)
    if "Sec-WebSocket-Accept" in reason:
        accept = headers.get_all("sec-websocket-accept")
        if not accept:
            return InvalidHeader("Sec-WebSocket-Accept")
        return InvalidHeaderValue("Sec-WebSocket-Accept", ", ".join(accept))
    # A subprotocol or an extension the client did not offer or cannot accept.
    return NegotiationError(reason)
