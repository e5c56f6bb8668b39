"""`HttpProtocol`: one HTTP/1.1 connection, written once for both parsers.

Requests are parsed eagerly (`parser.py`) and queued; the queue's head is the
one whose app runs, the others wait their turn so that responses go out in
request order (pipelining).  Reading pauses while a pipelined request waits
or while the running app leaves more than `BODY_HIGH_WATER` body bytes
unread, so memory stays bounded whatever the client sends.

A WebSocket upgrade request is handed, with the bytes already read behind
its head, to the `upgrade` callable the protocol was built with (the server
passes `asgiws.asgi.websocket.upgrade`) once every earlier response is out;
from then on this object is out of the picture.  The HTTP layer never
imports the WebSocket side it hands over to.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from asgiws.asgi.scope import http_scope
from asgiws.http.cycle import RequestCycle, ResponseState, service_unavailable
from asgiws.http.flow import BODY_HIGH_WATER, FlowControl
from asgiws.http.framing import build_response_head
from asgiws.http.parser import (
    BodyChunk,
    ParseFailed,
    RequestEnded,
    RequestStarted,
    make_parser,
)
from asgiws.observer import HttpConnectionClosed, HttpConnectionOpened
from asgiws.types import ConnectionContext, ConnectionInfo, RequestHead

logger = logging.getLogger("asgiws.error")


def at_concurrency_limit(ctx: ConnectionContext) -> bool:
    """`--limit-concurrency N`, one rule for HTTP requests and WebSocket
    handshakes: with more than N connections open (HTTP and WebSocket alike,
    the asking one included) or N app tasks running (requests being answered,
    WebSocket sessions), a new request or handshake gets 503."""
    limit = ctx.config.limit_concurrency
    state = ctx.server_state
    return limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit)


def start_app_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    ctx: ConnectionContext,
    name: str,
) -> None:
    """Run one app call (an HTTP request, a WebSocket session) in its own
    task, kept in the server's task set until it ends (graceful shutdown
    waits for them)."""
    if loop.get_task_factory() is None:
        # The Task made here, named: what loop.create_task() does, without
        # uvloop's wrapper around it and CPython formatting "Task-N"
        # (~1.8k instructions per task).
        task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, name=name)
    else:
        task = loop.create_task(coro)
    state = ctx.server_state
    state.tasks.add(task)
    task.add_done_callback(state.task_done)


UpgradeHandler = Callable[[asyncio.Transport, RequestHead, bytes, ConnectionContext], None]
"""Takes over a transport for a WebSocket: (transport, request head, bytes
received behind the head, context).  Reading is resumed when it is called."""


def _address(info: Any) -> tuple[str, int] | None:
    """(host, port) of a peername/sockname; None for UNIX sockets."""
    if type(info) is tuple and len(info) == 2 and type(info[0]) is str and type(info[1]) is int:
        # IPv4, the common case: the transport's own tuple (it keeps it
        # anyway), not a copy held for the connection's life.
        return info
    if isinstance(info, list | tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


class FreshConnections:
    """The connections of one server that have not started a request yet,
    oldest first, under one loop timer: the keep-alive timeout closes one
    that stays silent, as it does between requests.  Most connections start
    their first request a loop turn after they are accepted (a WebSocket
    handshake is then handed off for good); a timer armed and cancelled for
    each costs ~6k instructions with uvloop, an entry here a few hundred.
    Entries go in with the same timeout, in time order, so the oldest is the
    next to expire and one timer suffices."""

    __slots__ = ("_deadlines", "_timer", "loop", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self._deadlines: dict[HttpProtocol, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, conn: HttpProtocol, now: float) -> None:
        deadline = self._deadlines[conn] = now + self.timeout
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._expired)

    def discard(self, conn: HttpProtocol) -> None:
        # (The timer stays: when it fires it finds the next deadline, or
        # nothing; cancelling costs more.)
        self._deadlines.pop(conn, None)

    def _expired(self) -> None:
        self._timer = None
        deadlines = self._deadlines
        now = self.loop.time()
        while deadlines:
            conn = next(iter(deadlines))
            deadline = deadlines[conn]
            if now < deadline:
                self._timer = self.loop.call_at(deadline, self._expired)
                return
            del deadlines[conn]
            conn.fresh_timed_out()


def watch_fresh(
    conn: HttpProtocol, now: float, ctx: ConnectionContext, loop: asyncio.AbstractEventLoop
) -> FreshConnections:
    """Add `conn`, accepted at loop time `now`, to its server's
    `FreshConnections` (`ServerState.fresh_connections`, made by the
    server's first connection on this loop)."""
    state = ctx.server_state
    fresh = state.fresh_connections
    if fresh is None or fresh.loop is not loop:
        fresh = state.fresh_connections = FreshConnections(loop, ctx.config.timeout_keep_alive)
    fresh.add(conn, now)
    return fresh


class HttpProtocol(asyncio.Protocol):
    def __init__(
        self,
        ctx: ConnectionContext,
        upgrade: UpgradeHandler,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`loop`: the running loop, when the protocol factory has it at hand
        (asyncio.get_running_loop() is a getpid() system call on 3.11)."""
        self.ctx = ctx
        self.upgrade = upgrade
        self.config = ctx.config
        self.server_state = ctx.server_state
        self.app = ctx.server_state.app
        self.loop = asyncio.get_running_loop() if loop is None else loop
        self.parser = make_parser(ctx.config)
        # Set by connection_made.  (No typing.cast: it is a Python call,
        # three per connection.)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self._cycles: deque[RequestCycle] = deque()  # [0] is the one running
        self._parsing: RequestCycle | None = None  # receiving its body
        self._reading_requests = True
        self._close_after_response = False
        self._pending_error: ParseFailed | None = None
        self._pending_upgrade: tuple[RequestHead, bytes] | None = None
        self._keep_alive_timer: asyncio.TimerHandle | None = None  # after a response
        self._fresh: FreshConnections | None = None  # until the first request starts
        self._idle_since: float | None = None  # loop time the last response ended
        self._answered = False  # a response went out: idle now means between requests
        self._lost = False
        self._handed_off = False  # the upgrade handler took the transport

    # --- asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self.flow = FlowControl(self.transport)
        ctx = self.ctx
        client = _address(transport.get_extra_info("peername"))
        server = ctx.info.server  # the listener's own address, when it fixes it
        sockname = None
        if server is None:
            sockname = transport.get_extra_info("sockname")
            server = _address(sockname)
        trusted = ctx.server_state.trusted_proxies
        self.ctx = ConnectionContext(
            ctx.config,
            ctx.server_state,
            ConnectionInfo(
                client=client,
                server=server,
                # The listener's: the factory's context says (no lookup per connection).
                is_tls=ctx.info.is_tls,
                # Decided once per connection: the peer does not change.
                trusted_proxy=trusted is not None
                and trusted.trusts_peer(client, sockname if isinstance(sockname, str) else None),
            ),
        )
        self.server_state.connections.add(self)
        # The idle clock starts: the keep-alive timeout closes a connection
        # that sends no request, under the server's one timer for those.
        now = self._idle_since = self.loop.time()
        self._fresh = watch_fresh(self, now, ctx, self.loop)
        observer = self.server_state.observer
        if observer is not None:
            observer.http_connection_opened(HttpConnectionOpened(client))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        observer = self.server_state.observer
        if observer is not None and not self._handed_off:
            observer.http_connection_closed(HttpConnectionClosed(self.ctx.info.client, False))
        self.parser.close()
        self.server_state.connections.discard(self)
        self._cancel_keep_alive_timer()
        for cycle in self._cycles:
            cycle.lost()
        self._cycles.clear()
        if self._parsing is not None:
            self._parsing.lost()
            self._parsing = None
        self.flow.connection_lost()

    def eof_received(self) -> bool | None:
        # The client half-closed: treated as gone (returning None closes).
        return None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def data_received(self, data: bytes) -> None:
        if not self._reading_requests:
            if self._pending_upgrade is not None:
                head, trailing = self._pending_upgrade
                self._pending_upgrade = (head, trailing + data)
            return
        for event in self.parser.feed(data):
            # Most likely first: a GET is RequestStarted, RequestEnded.
            # (type() is: no subclass walk, and mypy narrows on it.)
            if type(event) is RequestStarted:
                self._on_request(event)
            elif type(event) is RequestEnded:
                # (The request's end, written out here: once per request.)
                cycle = self._parsing
                if cycle is not None:
                    self._parsing = None
                    cycle.end_body()
                    if not cycle.keep_alive:
                        # Nothing after a "Connection: close" request is read as a request.
                        self._reading_requests = False
            elif type(event) is BodyChunk:
                if self._parsing is not None:
                    self._parsing.feed_body(event.data)
            elif type(event) is ParseFailed:
                self._on_parse_failed(event)
            if not self._reading_requests:
                break
        # _update_reading(), written out for the common case: one request
        # that is not reading a body, reading not paused.
        if self._parsing is None and len(self._cycles) <= 1 and not self.flow.read_paused:
            if self._pending_upgrade is not None and not self._lost:
                self.flow.pause_reading()
            return
        self._update_reading()

    # --- graceful shutdown (ManagedConnection) ---------------------------------
    def shutdown(self) -> None:
        """Idle: close now.  Busy: close once the current response is out.

        A connection accepted just before shutdown that has not delivered its
        first request yet is not idle: its request may already be on the way
        (a worker recycled by --limit-max-requests must not reset it), so it
        gets one response, with Connection: close (the keep-alive timeout
        still bounds the wait)."""
        fresh = not self._answered and self._pending_upgrade is None
        if not self._cycles and fresh:
            self._close_after_response = True
            return
        if not self._cycles:
            if not self.transport.is_closing():
                self.transport.close()
            return
        self._close_after_response = True
        for cycle in self._cycles:
            cycle.keep_alive = False

    # --- parser events ---------------------------------------------------------
    def _on_request(self, event: RequestStarted) -> None:
        self._idle_since = None  # busy: the idle clock stops
        if self._fresh is not None:
            self._fresh.discard(self)
            self._fresh = None
        if event.upgrade:
            self._reading_requests = False
            self._pending_upgrade = (event.head, self.parser.trailing_data())
            if not self._cycles:
                self._hand_off()
            return
        app = self.app
        state = self.server_state
        if self.config.limit_concurrency is not None and at_concurrency_limit(self.ctx):
            app = service_unavailable
        cycle = RequestCycle(
            http_scope(event.head, self.ctx),
            app,
            self.ctx,
            self.transport,
            self.flow,
            keep_alive=(
                event.keep_alive and not self._close_after_response and not state.shutting_down
            ),
            expect_continue=event.expect_continue,
            on_body_taken=self._update_reading,
            on_complete=self._on_response_complete,
        )
        self._parsing = cycle
        self._cycles.append(cycle)
        if len(self._cycles) == 1:
            start_app_task(self.loop, cycle.run_asgi(), self.ctx, "asgiws-http")

    def _on_parse_failed(self, event: ParseFailed) -> None:
        self._reading_requests = False
        logger.warning("Invalid HTTP request received: %s", event.reason)
        cycle = self._parsing
        if cycle is not None:
            # The body of a request broke off: its exchange cannot finish cleanly.
            self._parsing = None
            if cycle.state is ResponseState.DONE:
                self.transport.close()
                return
            if self._cycles and cycle is self._cycles[0]:
                if not cycle.written:
                    self._write_error(event)
                cycle.lost()
                self.transport.close()
                return
            self._cycles.remove(cycle)  # queued, its app never ran
        self._pending_error = event
        if not self._cycles:
            self._write_error(event)
            self.transport.close()

    def _write_error(self, event: ParseFailed) -> None:
        try:
            body = HTTPStatus(event.status).phrase.encode()
        except ValueError:
            body = b"Invalid HTTP request"
        head = build_response_head(
            event.status,
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
            ],
            method="GET",
            http_version="1.1",
            keep_alive=False,
            default_headers=self.server_state.default_headers,
        )
        self.transport.write(head.data + body)

    # --- running requests ----------------------------------------------------------
    def _on_response_complete(self, cycle: RequestCycle) -> None:
        self.server_state.total_requests += 1
        self._answered = True
        if self._cycles and self._cycles[0] is cycle:
            self._cycles.popleft()
        head = cycle.response_head
        keep_alive = head is not None and head.keep_alive and not self._close_after_response
        if cycle is self._parsing:
            if cycle.waiting_for_100_continue:
                # The client holds the body back for a 100 it will never get;
                # whether it sends it anyway is unknowable, so close.
                keep_alive = False
            else:
                cycle.drop_body()
        if not keep_alive or self.transport.is_closing():
            self._reading_requests = False
            self.transport.close()
            return
        if self._cycles:
            start_app_task(self.loop, self._cycles[0].run_asgi(), self.ctx, "asgiws-http")
        elif self._pending_upgrade is not None:
            self._hand_off()
            return
        elif self._pending_error is not None:
            self._write_error(self._pending_error)
            self.transport.close()
            return
        else:
            # The idle clock starts (_start_idle_clock, written out: once per request).
            self._idle_since = self.loop.time()
            if self._keep_alive_timer is None:
                self._start_idle_clock()
            if self._parsing is None and not self.flow.read_paused:
                return  # (_update_reading would find nothing to do)
        self._update_reading()

    def _update_reading(self) -> None:
        if self._lost:
            return
        parsing = self._parsing
        if (
            len(self._cycles) > 1
            or self._pending_upgrade is not None
            or (parsing is not None and parsing.buffered > BODY_HIGH_WATER)
        ):
            self.flow.pause_reading()
        elif self.flow.read_paused:  # (tested here: this runs twice per request)
            self.flow.resume_reading()

    # --- WebSocket hand-off ------------------------------------------------------
    def _hand_off(self) -> None:
        assert self._pending_upgrade is not None
        head, trailing = self._pending_upgrade
        self._pending_upgrade = None
        self._handed_off = True
        self.parser.close()
        if self._fresh is not None or self._keep_alive_timer is not None:
            self._cancel_keep_alive_timer()
        if self.flow.read_paused:
            self.flow.resume_reading()
        try:
            self.upgrade(self.transport, head, trailing, self.ctx)
        except Exception:
            logger.exception("WebSocket upgrade failed")
            self.transport.close()
        finally:
            # Left only after the WebSocket side has registered itself, so the
            # registry never looks empty to a graceful shutdown in between.
            self.server_state.connections.discard(self)
            observer = self.server_state.observer
            if observer is not None:
                observer.http_connection_closed(HttpConnectionClosed(self.ctx.info.client, True))

    # --- keep-alive ---------------------------------------------------------------
    # One timer per connection, not one per request, armed when the first
    # response ends (before that, the server's FreshConnections watches the
    # connection): a request only marks the connection busy, and the end of
    # a response only notes the time.  The timer, when it fires, closes an
    # idle connection or sleeps for the rest.
    def _start_idle_clock(self) -> None:
        self._idle_since = self.loop.time()
        if self._keep_alive_timer is None:
            self._keep_alive_timer = self.loop.call_at(
                self._idle_since + self.config.timeout_keep_alive, self._keep_alive_expired
            )

    def _cancel_keep_alive_timer(self) -> None:
        self._idle_since = None
        if self._fresh is not None:
            self._fresh.discard(self)
            self._fresh = None
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None

    def _keep_alive_expired(self) -> None:
        self._keep_alive_timer = None
        if self._idle_since is None:
            return  # busy: the end of the response starts the clock again
        deadline = self._idle_since + self.config.timeout_keep_alive
        if self.loop.time() < deadline:
            self._keep_alive_timer = self.loop.call_at(deadline, self._keep_alive_expired)
        elif not self._cycles and not self.transport.is_closing():
            self.transport.close()

    def fresh_timed_out(self) -> None:
        """No request started within the keep-alive timeout of the
        connection being accepted (`FreshConnections`)."""
        self._fresh = None
        if self._idle_since is not None and not self._cycles and not self.transport.is_closing():
            self.transport.close()
