"""The ASGI face of a WebSocket connection (ASGI 3.0, HTTP/WebSocket spec 2.5).

`upgrade()` takes over a transport from the HTTP layer when a request asks
for `Upgrade: websocket`: it validates the opening handshake, swaps in a
`WebSocketConnection` as the transport's protocol (bytes behind the request
head stay buffered until the app accepts), and runs the app in one task that
translates `websocket.*` messages to connection calls and back.

Every answer other than 101 (a handshake the engine refuses, an origin not
allowed, the app's `websocket.close` before accept or its
`websocket.http.response.*` denial, an app error, the handshake timeout) is
reported to the server's observer as `HandshakeRefused`, once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from typing import TYPE_CHECKING, Any

from asgiws.asgi.scope import NO_OPTIONS, build_scope, client_and_secure, request_path
from asgiws.connection import WebSocketConnection
from asgiws.datastructures import Headers
from asgiws.exceptions import ClientDisconnected, ConnectionClosed
from asgiws.extensions.negotiation import engine_arguments, negotiate_server
from asgiws.http.framing import BodyEncoder, build_response_head, switching_protocols_head
from asgiws.http.protocol import at_concurrency_limit, start_app_task
from asgiws.observer import HandshakeRefused
from asgiws.websocket.connection import ServerEngine
from asgiws.websocket.deflate import negotiate
from asgiws.websocket.errors import HandshakeError
from asgiws.websocket.handshake import (
    ClientHandshake,
    accept_headers,
    check_origin,
    validate_request,
)

if TYPE_CHECKING:
    from asgiws.types import ConnectionContext, Message, RequestHead, Scope

__all__ = ["CONNECTION_EXTENSION", "WebSocketSession", "upgrade"]

logger = logging.getLogger("asgiws.error")

CONNECTION_EXTENSION = "asgiws.connection"
"""scope["extensions"] key under which the app finds the WebSocketConnection."""

NO_RESPONSE = 0
"""`HandshakeRefused.status` when the connection was dropped without any
HTTP answer (the handshake timeout), as proxies log a response code 0."""


def upgrade(
    transport: asyncio.Transport, head: RequestHead, trailing: bytes, ctx: ConnectionContext
) -> None:
    """Take over `transport` for the WebSocket requested by `head`.

    `trailing` are bytes that arrived behind the request head (a client may
    send its first frame in the same packet as its handshake); they are kept
    until the app accepts and are then parsed as WebSocket frames.
    """
    config = ctx.config
    try:
        # (The handshake indexes the headers for itself; the connection
        # keeps them unindexed in `request_headers` below, so that an idle
        # connection does not carry the index.)
        handshake = validate_request(head.method, head.http_version, head.headers)
        if config.ws_origins:
            check_origin(handshake.origin, config.ws_origins)
        if config.limit_concurrency is not None and at_concurrency_limit(ctx):
            raise HandshakeError(503, "Service Unavailable")
        options = ctx.server_state.ws_options
        assert options is not None, "Server.load() builds the connection options"
        deflate = None
        if options.extensions:  # serve(extensions=...) with more than permessage-deflate
            value, accepted = negotiate_server(handshake.extensions, options.extensions)
            if value is not None:
                deflate = (value, engine_arguments(accepted))
        elif options.deflate is not None and handshake.extensions:
            found = negotiate(handshake.extensions, options.deflate)
            if found is not None:
                deflate = (found[0], {"deflate": found[1]})
    except HandshakeError as exc:
        logger.info("WebSocket handshake refused (%d): %s", exc.status, exc.reason)
        _write_plain_response(transport, head, ctx, exc.status, exc.reason, exc.headers)
        transport.close()
        _report_refusal(head, ctx, exc.status, exc.reason)
        return

    observer = ctx.server_state.observer
    # serve(create_protocol=...) may name a subclass of the connection class.
    conn = (ctx.server_state.ws_protocol or AsgiWebSocketConnection)(
        options,
        registry=ctx.server_state.connections,
        observer=observer,
        # The observer hears of the client the scope names (proxy headers).
        reported_client=None if observer is None else client_and_secure(head, ctx)[0],
    )
    conn.path = head.path
    # (Common names and values are shared bytes already: wire.SHARED_FIELD_BYTES.)
    conn.request_headers = Headers.over(head.headers)  # the scope's list, shared
    transport.set_protocol(conn)
    conn.connection_made(transport)
    if trailing:
        conn.data_received(trailing)

    loop = conn.loop  # (see WebSocketConnection.loop)
    session = WebSocketSession(conn, head, handshake, deflate, ctx)
    if isinstance(conn, AsgiWebSocketConnection):
        conn.session = weakref.ref(session)
    start_app_task(loop, session.run(), ctx, "asgiws-websocket")
    # Queued behind the task's first step: most apps answer websocket.connect
    # in it, and then need no handshake timer (a timer costs ~6k
    # instructions per handshake with uvloop, this callback a fraction).
    loop.call_soon(session.arm_handshake_timer, loop)


class AsgiWebSocketConnection(WebSocketConnection):
    """The connection under one ASGI session.  Graceful shutdown while the
    app has not answered `websocket.connect` refuses the handshake with an
    HTTP 503: there is no WebSocket to close yet, and a dropped TCP
    connection would tell the client nothing (a 503 says "retry elsewhere")."""

    # Held weakly: the session holds the connection, and a cycle between
    # the two would leave every finished connection to the cyclic garbage
    # collector (see tests/integration/test_reference_cycles.py).  The
    # session's own task keeps it alive for as long as it runs.
    __slots__ = ("session",)

    session: weakref.ref[WebSocketSession] | None

    def shutdown(self) -> None:
        ref = getattr(self, "session", None)
        session = None if ref is None else ref()
        if session is None or not session.refuse_for_shutdown():
            super().shutdown()


def _report_refusal(head: RequestHead, ctx: ConnectionContext, status: int, reason: str) -> None:
    observer = ctx.server_state.observer
    if observer is not None:
        client, _secure = client_and_secure(head, ctx)
        observer.handshake_refused(
            HandshakeRefused(request_path(head, ctx), client, status, reason)
        )


def _write_plain_response(
    transport: asyncio.Transport,
    head: RequestHead,
    ctx: ConnectionContext,
    status: int,
    text: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete text/plain response that ends the connection."""
    body = text.encode("utf-8")
    response = build_response_head(
        status,
        [
            *(headers or []),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ],
        method=head.method,
        http_version=head.http_version,
        keep_alive=False,
        default_headers=ctx.server_state.default_headers,
    )
    transport.writelines([response.data, body])


_NO_EXTENSIONS: tuple[None, dict[str, Any]] = (None, {})
"""No extension negotiated: no Sec-WebSocket-Extensions, no engine arguments."""


class _Phase(enum.Enum):
    CONNECTING = "connecting"  # websocket.connect delivered, app has not answered
    ACCEPTED = "accepted"  # 101 sent: websocket.receive/send flow
    RESPONDING = "responding"  # websocket.http.response.start sent, body pending
    DONE = "done"  # denied, failed or app closed: nothing more goes out


# Module constants, read where _Phase.X would be: on Python 3.11 and older an
# enum class's attribute goes through EnumType.__getattr__'s slot (~850
# instructions against ~50 for a global), and receive() and send() test the
# phase once per message.
_CONNECTING, _ACCEPTED = _Phase.CONNECTING, _Phase.ACCEPTED
_RESPONDING, _DONE = _Phase.RESPONDING, _Phase.DONE


class WebSocketSession:
    """One run of the ASGI app over one WebSocket connection."""

    __slots__ = (
        "__weakref__",
        "_answered",
        "_connect_sent",
        "_ctx",
        "_deflate",
        "_disconnect",
        "_encoder",
        "_handshake",
        "_handshake_timer",
        "_head",
        "_phase",
        "conn",
        "scope",
    )

    def __init__(
        self,
        conn: WebSocketConnection,
        head: RequestHead,
        handshake: ClientHandshake,
        deflate: tuple[str, dict[str, Any]] | None,
        ctx: ConnectionContext,
    ) -> None:
        self.conn = conn
        self._head = head
        self._handshake = handshake
        self._deflate = deflate
        self._ctx = ctx
        self._phase = _CONNECTING
        self._connect_sent = False
        self._answered: asyncio.Future[None] | None = None  # see receive()
        self._disconnect: Message | None = None
        self._encoder: BodyEncoder | None = None
        # Armed by arm_handshake_timer() if the app's first step leaves
        # websocket.connect unanswered.
        self._handshake_timer: asyncio.TimerHandle | None = None
        # (websocket_scope()'s builder called straight: one Python call fewer.)
        self.scope: Scope = build_scope(
            "websocket",
            head,
            ctx,
            handshake.subprotocols,
            {"websocket.http.response": NO_OPTIONS, CONNECTION_EXTENSION: conn},
        )

    # ------------------------------------------------------------------
    async def run(self) -> None:
        """Call the app and clean up whatever state it leaves the socket in."""
        conn = self.conn
        try:
            await self._ctx.server_state.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            # Our own "send after close"; the spec says not to log it as an error.
            logger.debug("ASGI app stopped: the WebSocket client disconnected")
        except asyncio.CancelledError:
            self._finish_after_error()
            raise
        except Exception:
            logger.exception("Exception in ASGI application")
            self._finish_after_error()
        else:
            if self._phase is _CONNECTING:
                logger.error("ASGI callable returned without sending handshake.")
                self._respond_500("app returned without answering websocket.connect")
            elif self._phase is _RESPONDING:
                logger.error("ASGI callable returned without completing the response.")
                conn.abort()
            elif self._phase is _ACCEPTED:
                # The app is done with the socket: the normal closure.
                conn.start_close(1000, "")
        finally:
            if self._handshake_timer is not None or self._answered is not None:
                self._cancel_handshake_timer()

    def _finish_after_error(self) -> None:
        phase = self._phase
        if phase is _CONNECTING:
            self._respond_500("app error before websocket.accept")
        elif phase is _ACCEPTED:
            self.conn.start_close(1011, "")  # 1011: internal error
        elif phase is _RESPONDING:
            self.conn.abort()  # half a response is on the wire
        self._phase = _DONE

    def _respond_500(self, reason: str) -> None:
        self._phase = _DONE
        self._respond_plain(500, "Internal Server Error", reason)

    def refuse_for_shutdown(self) -> bool:
        """Answer 503 if the app has not answered `websocket.connect`; False
        when the handshake is past that point (the caller closes as usual)."""
        if self._phase is not _CONNECTING:
            return False
        logger.info("WebSocket handshake refused (503): the server is shutting down")
        self._phase = _DONE
        self._cancel_handshake_timer()
        self._respond_plain(503, "Service Unavailable", "server shutting down")
        return True

    def arm_handshake_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run right after the app's first step (`upgrade` queues it behind
        the task's): the app must answer websocket.connect in time, else the
        connection is dropped (it holds a socket and a task).  The timeout
        counts from here, a loop turn after the handshake arrived."""
        if self._phase is _CONNECTING and not self.conn.closed:
            self._handshake_timer = loop.call_later(
                self._ctx.config.ws_handshake_timeout, self._handshake_timed_out
            )

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        if self._phase is _CONNECTING or self._phase is _RESPONDING:
            logger.info("WebSocket handshake timed out: the app did not accept in time")
            if self._phase is _CONNECTING and not self.conn.closed:
                # (A denial already reported its status when it started.)
                _report_refusal(
                    self._head, self._ctx, NO_RESPONSE, "the app did not answer in time"
                )
            self._phase = _DONE
            self.conn.abort()
            self._cancel_handshake_timer()

    def _cancel_handshake_timer(self) -> None:
        """The app answered websocket.connect (or never will)."""
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        answered = self._answered
        if answered is not None and not answered.done():
            answered.set_result(None)

    @property
    def accepted(self) -> bool:
        """The 101 went out: websocket.receive/send messages flow."""
        return self._phase is _ACCEPTED

    # ------------------------------------------------------------------
    async def receive(self) -> Message:
        if self._phase is _ACCEPTED:
            try:
                data = await self.conn.recv()
            except ConnectionClosed as exc:
                # The code that ended the connection: the peer's, else ours
                # (e.g. 1009 or 1011 "keepalive ping timeout" when the peer
                # never answered), else 1006 (no close frame at all).
                close = exc.rcvd or exc.sent
                if close is None:
                    return self._disconnected(exc.code, exc.reason)
                return self._disconnected(close.code, close.reason)
            # "" and b"" are messages too: never test the payload for truth.
            if type(data) is str:
                return {"type": "websocket.receive", "text": data}
            return {"type": "websocket.receive", "bytes": data}
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        if self._phase is _CONNECTING:
            # Connect was delivered and the app has not answered yet: another
            # of its tasks may be about to accept (Channels-style dispatch
            # loops), so wait for the answer or for the connection to end.
            if self._answered is None:
                self._answered = asyncio.get_running_loop().create_future()
            closed = asyncio.ensure_future(self.conn.wait_closed())
            try:
                await asyncio.wait({self._answered, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
            if self.accepted:  # (the phase changed while we waited)
                return await self.receive()
        # Denied, failed or closed by the app: no WebSocket messages any more.
        if self._disconnect is not None:
            return self._disconnect
        await self.conn.wait_closed()
        code = self.conn.close_code
        return self._disconnected(1006 if code is None else code, self.conn.close_reason or "")

    def _disconnected(self, code: int, reason: str) -> Message:
        message: Message = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self._disconnect = message
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        phase = self._phase
        if phase is _ACCEPTED:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is None:
                    data = message.get("text")
                    if data is None:
                        raise TypeError("websocket.send needs 'bytes' or 'text'")
                try:
                    await self.conn.send(data)
                except ConnectionClosed as exc:
                    raise ClientDisconnected(str(exc)) from exc
            elif kind == "websocket.close":
                self._phase = _DONE
                self.conn.start_close(message.get("code") or 1000, message.get("reason") or "")
            else:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} after websocket.accept")
        elif phase is _CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                # ASGI: close before accept -> HTTP 403, no WebSocket at all.
                self._phase = _DONE
                self._cancel_handshake_timer()
                self._respond_plain(403, "Forbidden", "websocket.close before websocket.accept")
            elif kind == "websocket.http.response.start":
                self._start_response(message)
            else:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} before websocket.accept")
        elif phase is _RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected websocket.http.response.body, got {kind!r}")
            self._send_response_body(message)
        elif kind == "websocket.close" and not self.conn.closed:
            pass  # a second close while the closing handshake runs: nothing to do
        else:
            raise ClientDisconnected(f"cannot send {kind!r}: the WebSocket is closed")

    def _accept(self, message: Message) -> None:
        conn = self.conn
        if conn.closed:
            self._phase = _DONE
            raise ClientDisconnected("the client disconnected before websocket.accept")
        subprotocol: str | None = message.get("subprotocol")
        # (the Sec-WebSocket-Extensions value, the engine's deflate= or extensions=)
        extensions_value, engine_extensions = self._deflate or _NO_EXTENSIONS
        # Ours (Accept, the extension we negotiated) need no checking; the
        # subprotocol and extra headers come from the app and are validated.
        own = accept_headers(self._handshake.key, None, extensions_value)
        app_headers = message.get("headers")
        if app_headers or subprotocol is not None:
            app_headers = list(app_headers or ())
            if subprotocol is not None:
                app_headers.insert(0, (b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        default_headers = self._ctx.server_state.default_headers
        if app_headers:
            head = build_response_head(
                101,
                app_headers,
                method="GET",
                http_version=self._head.http_version,
                keep_alive=True,
                default_headers=default_headers,
                own_headers=own,
            ).data
        else:
            head = switching_protocols_head(default_headers, own)
        headers = own + app_headers if app_headers else own
        if engine_extensions:
            engine = ServerEngine(max_size=conn.options.max_size, **engine_extensions)
        else:
            engine = ServerEngine(max_size=conn.options.max_size)
        self._cancel_handshake_timer()
        self._phase = _ACCEPTED
        # Handshake-time data an open connection never reads again: an idle
        # connection does not keep it (~0.4 KiB each).
        del self._head, self._handshake, self._deflate
        conn.subprotocol = subprotocol
        conn.response_headers = Headers.over(headers)  # kept while the connection lives
        burst = self._ctx.server_state.handshake_burst
        if burst is None:
            transport = conn.transport
            assert transport is not None
            transport.write(head)
        else:
            conn.write_with_burst(head, burst)
        conn.attach_engine(engine)

    def _respond_plain(self, status: int, text: str, reason: str) -> None:
        """Refuse with a text/plain response, unless the client is gone."""
        transport = self.conn.transport
        if transport is not None and not self.conn.closed:
            _write_plain_response(transport, self._head, self._ctx, status, text)
            transport.close()
            _report_refusal(self._head, self._ctx, status, reason)

    def _start_response(self, message: Message) -> None:
        """`websocket.http.response.start`: deny the upgrade with the app's response."""
        status = int(message["status"])
        response = build_response_head(
            status,
            message.get("headers") or [],
            method=self._head.method,
            http_version=self._head.http_version,
            keep_alive=False,
            default_headers=self._ctx.server_state.default_headers,
        )
        self._cancel_handshake_timer()
        self._phase = _RESPONDING
        self._encoder = response.encoder
        transport = self.conn.transport
        if transport is not None and not self.conn.closed:
            transport.write(response.data)
            _report_refusal(self._head, self._ctx, status, "websocket.http.response denial")

    def _send_response_body(self, message: Message) -> None:
        assert self._encoder is not None
        more = bool(message.get("more_body", False))
        chunks = self._encoder.encode(bytes(message.get("body", b"")), more)
        conn = self.conn
        transport = conn.transport
        if conn.closed or transport is None:
            self._phase = _DONE
            raise ClientDisconnected("the client disconnected during the denial response")
        if chunks:
            transport.writelines(chunks)
        if not more:
            self._phase = _DONE
            transport.close()
