"""One request/response exchange as the ASGI `http.*` protocol sees it.

`RequestCycle` owns the scope, the request body buffer, and the response
state (start, then body messages, then done).  The connection (`protocol.py`)
feeds it parsed body bytes and tells it when the client went away; the cycle
calls back when the app has consumed body (so reading may resume) and when
the response is complete (so the next pipelined request may run).

The response head is held back until the first body message (the ASGI spec:
"the protocol server must not start sending the response to the client until
it has received at least one Response Body event"), so head and first body
go out in one write, and an app that fails between the two still gets a 500.

When the exchange ends (response complete, cut off, or the client gone) the
cycle reports it to the server's observer, if any: `HttpRequestDone` with
the status that went out and the time from the request head to the last
body byte.  The access log is one subscriber (`asgiws.access_log`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from asgiws.exceptions import ClientDisconnected
from asgiws.http.flow import FlowControl
from asgiws.http.framing import Framing, ResponseHead, build_response_head
from asgiws.observer import HttpRequestDone
from asgiws.types import ASGIApp, ConnectionContext, Message, Scope

logger = logging.getLogger("asgiws.error")

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
SMALL_WRITE = 16 * 1024
"""Below this many bytes the parts of a write are joined; above, writelines."""

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}


class ResponseState(enum.Enum):
    START = "start"  # waiting for http.response.start
    BODY = "body"  # waiting for http.response.body (more_body until False)
    DONE = "done"


# Module constants: a global load where ResponseState.X would add an attribute
# lookup on the enum class, in the per-request path.
_START = ResponseState.START
_BODY = ResponseState.BODY
_DONE = ResponseState.DONE
_LENGTH = Framing.LENGTH


class RequestCycle:
    def __init__(
        self,
        scope: Scope,
        app: ASGIApp,
        ctx: ConnectionContext,
        transport: asyncio.Transport,
        flow: FlowControl,
        *,
        keep_alive: bool,
        expect_continue: bool,
        on_body_taken: Callable[[], None],
        on_complete: Callable[[RequestCycle], None],
    ) -> None:
        self.scope = scope
        self.app = app
        self.ctx = ctx
        self.transport = transport
        self.flow = flow
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_continue
        self._on_body_taken = on_body_taken
        self._on_complete = on_complete
        self._observer = observer = ctx.server_state.observer
        # Read only for the observer's report: no clock without a subscriber.
        self._started = time.monotonic() if observer is not None else 0.0
        self._status: int | None = None  # what went out (or will); None once reported
        # request side, fed by the connection
        self._chunks: list[bytes] = []
        self.buffered = 0
        self.more_body = True
        self._final_delivered = False
        self.discard_body = False
        self.disconnected = False
        # Created only when receive() has to wait: most requests never do.
        self._wakeup: asyncio.Event | None = None
        # response side
        self.state = _START
        self.written = False
        self.response_head: ResponseHead | None = None

    # --- connection -> cycle -------------------------------------------------
    def feed_body(self, data: bytes) -> None:
        if self.discard_body or not data:
            return
        self._chunks.append(data)
        self.buffered += len(data)
        self._wake()

    def end_body(self) -> None:
        self.more_body = False
        if self._wakeup is not None:  # (_wake, written out: once per request)
            self._wakeup.set()

    def drop_body(self) -> None:
        """The response is complete: the rest of the request body is read and dropped."""
        self.discard_body = True
        self._chunks = []
        self.buffered = 0

    def lost(self) -> None:
        self.disconnected = True
        self._wake()
        if self._observer is not None:
            self._report()  # a response cut off by the client (no-op if none started)

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    # --- the app -------------------------------------------------------------
    async def run_asgi(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._abort()
            raise
        except BaseException as exc:
            if self.disconnected and isinstance(exc, OSError):
                logger.debug("Client went away during the response: %r", exc)
            else:
                logger.error("Exception in ASGI application\n", exc_info=exc)
            await self._fail()
        else:
            if self.state is _DONE or self.disconnected:
                return
            if self.state is _START:
                logger.error("ASGI callable returned without starting response.")
            else:
                logger.error("ASGI callable returned without completing response.")
            await self._fail()

    async def _fail(self) -> None:
        """500 when nothing reached the client yet; otherwise cut the connection."""
        if self.state is _DONE or self.disconnected:
            return
        if self.written:
            self._abort()
            return
        body = b"Internal Server Error"
        self.state = _BODY
        self._status = 500
        self.response_head = self._build_head(
            500,
            [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
        )
        try:
            await self._send_body(body, False)
        except OSError:
            self._abort()

    def _abort(self) -> None:
        if self.state is not _DONE:
            self.transport.close()
            if self._observer is not None:
                self._report()

    # --- receive ---------------------------------------------------------------
    async def receive(self) -> Message:
        if self.waiting_for_100_continue and not self.written and not self.disconnected:
            # RFC 9110 10.1.1: send 100 only once the app wants the body.
            self.waiting_for_100_continue = False
            self.transport.write(CONTINUE_RESPONSE)
        while True:
            if self.disconnected or self.state is _DONE:
                return dict(_DISCONNECT)
            if self._chunks or (not self.more_body and not self._final_delivered):
                chunks = self._chunks
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._chunks = []
                self.buffered = 0
                self._final_delivered = not self.more_body
                self._on_body_taken()
                return {"type": "http.request", "body": body, "more_body": self.more_body}
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    # --- send ------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected("the HTTP client has disconnected")
        state = self.state
        if state is _BODY:
            if message.get("type") != "http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.body', but got {message.get('type')!r}."
                )
            body = message.get("body", b"")
            if body.__class__ is not bytes:
                if not isinstance(body, bytes | bytearray | memoryview):
                    raise RuntimeError(f"'body' must be bytes, not {type(body).__name__}")
                body = bytes(body)
            more_body = bool(message.get("more_body", False))
            head = self.response_head
            assert head is not None
            if (
                not more_body
                and not self.written
                and not self.flow.write_paused
                and head.framing is _LENGTH  # (the head is its body's encoder)
                and len(body) == head.remaining
                and len(body) <= SMALL_WRITE
            ):
                # The whole response in one small write (most answers): what
                # _send_body writes, without its coroutine or the parts list;
                # then _done(), written out.
                self.written = True
                head.remaining = 0
                self.transport.write(head.data + body)
                self.state = _DONE
                if self._wakeup is not None:  # a receive() waiting for disconnect returns now
                    self._wakeup.set()
                if self._observer is not None:
                    self._report()
                self._on_complete(self)
            else:
                await self._send_body(body, more_body)
        elif state is _START:
            message_type = message.get("type")
            if message_type != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got {message_type!r}."
                )
            status: Any = message.get("status")
            self.response_head = build_response_head(
                status,
                message.get("headers", ()),
                method=self.scope["method"],
                http_version=self.scope["http_version"],
                keep_alive=self.keep_alive,
                default_headers=self.ctx.server_state.default_headers,
            )
            self.state = _BODY
            self._status = status
        else:
            raise RuntimeError(
                f"Unexpected ASGI message {message.get('type')!r} sent, "
                "after response already completed."
            )

    def _build_head(self, status: Any, headers: Any) -> ResponseHead:
        scope = self.scope
        return build_response_head(
            status,
            headers,
            method=scope["method"],
            http_version=scope["http_version"],
            keep_alive=self.keep_alive,
            default_headers=self.ctx.server_state.default_headers,
        )

    async def _send_body(self, body: bytes, more_body: bool) -> None:
        if self.flow.write_paused:
            await self.flow.drain()
            if self.disconnected:
                raise ClientDisconnected("the HTTP client has disconnected")
        head = self.response_head
        assert head is not None
        parts = head.encode(body, more_body)
        if not self.written:
            self.written = True
            parts.insert(0, head.data)
        self._write(parts)
        if not more_body:
            self._done()

    def _done(self) -> None:
        """The last body byte is written."""
        self.state = _DONE
        if self._wakeup is not None:  # a receive() waiting for disconnect returns now
            self._wakeup.set()
        if self._observer is not None:
            self._report()
        self._on_complete(self)

    def _write(self, parts: list[bytes]) -> None:
        if len(parts) == 1:
            self.transport.write(parts[0])
        elif parts:
            if sum(map(len, parts)) <= SMALL_WRITE:
                self.transport.write(b"".join(parts))
            else:
                self.transport.writelines(parts)

    def _report(self) -> None:
        """Tell the observer how the exchange ended; once, and only when a
        status was decided (a client gone before any answer is no request
        done).  Callers test `_observer` first, so nothing runs without one."""
        status = self._status
        if status is None or self._observer is None:
            return
        self._status = None
        scope = self.scope
        self._observer.http_request_done(
            HttpRequestDone(
                method=scope["method"],
                path=scope["path"],
                query_string=scope["query_string"],
                http_version=scope["http_version"],
                client=scope["client"],
                status=status,
                duration=time.monotonic() - self._started,
            )
        )


async def service_unavailable(scope: Scope, receive: Any, send: Any) -> None:
    """The app that stands in when `limit_concurrency` is reached."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"19"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"Service Unavailable"})
