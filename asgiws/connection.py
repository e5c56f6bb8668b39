"""The asyncio WebSocket connection: one object owns the transport, the
sans-I/O engine, flow control in both directions and the timers.

The ASGI adapter, the `serve(handler)` API and the `connect()` client are
thin faces over `WebSocketConnection`; the engine passed in decides the role
(server or client).

Cost per message is kept small on purpose: no task per message or per
connection, no queue between `send()` and the transport when the transport
accepts the write, and timers are `loop.call_later` handles.

Replies to a burst are coalesced: while received messages are still queued
for the application, the messages it sends are held (at most `_CORK_LIMIT`
bytes) and go out in one `writelines` -- one system call instead of one per
message -- as soon as the queue runs dry (the last reply, or `recv()` about
to wait), or at the latest on the next loop iteration.  A lone message is
written at once, and so is any control frame (with what is held before it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
import weakref
from collections import deque
from collections.abc import (
    AsyncIterable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    MutableSet,
)
from typing import TYPE_CHECKING, Any, cast

from asgiws.datastructures import Headers
from asgiws.exceptions import (
    ABNORMAL_CLOSURE,
    ConnectionClosed,
    ConnectionClosedOK,
    connection_closed,
)
from asgiws.websocket.connection import Engine, EngineState
from asgiws.websocket.events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
)

if TYPE_CHECKING:
    from asgiws.config import Config
    from asgiws.websocket.frames import Close

__all__ = ["Data", "WebSocketConnection"]

Data = str | bytes
"""What `recv()` returns: str for a text message, bytes for a binary one."""

BytesLike = bytes | bytearray | memoryview
OutgoingData = str | BytesLike

DEBUG = logging.DEBUG
_OPEN, _CLOSED = EngineState.OPEN, EngineState.CLOSED
_PAYLOAD_LOG_LIMIT = 75  # characters of payload shown in a DEBUG frame line
_CORK_LIMIT = 64 * 1024
"""Most bytes of frames held back to coalesce replies to a burst; a bigger
write goes out at once (its system call is cheap next to its copy anyway)."""


class _Failure(str):
    """Queue marker: the point in the message stream where a protocol error was."""


_FAILURE: Data = _Failure("<protocol error>")

_DEFAULT_LOGGER = logging.getLogger("asgiws.websocket")


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Log records carry `extra={"websocket": connection}`, as in the
    websockets library, but the connection is held weakly: a closed
    connection is then freed by reference counting alone, not left for the
    cyclic garbage collector, whose full passes over thousands of closed
    connections stalled the server for 100-300 ms."""

    def __init__(self, logger: logging.Logger, connection: WebSocketConnection) -> None:
        super().__init__(logger, None)
        self._connection = weakref.ref(connection)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "websocket": self._connection()}
        return msg, kwargs


class WebSocketConnection(asyncio.Protocol):
    """One WebSocket connection over an asyncio transport.

    Until an engine is attached (the ASGI face attaches it when the app
    accepts, the client once the 101 is validated) incoming bytes are buffered,
    never parsed and never lost.
    """

    # Frames held back while a burst of received messages is answered (see
    # the module docstring); None when nothing is held.  Class-level defaults:
    # a connection that never answers a burst carries no entry for them.
    _corked: list[bytes] | None = None
    _corked_size = 0

    # Thousands of idle connections each hold one: fixed attributes in slots.
    # `__dict__` stays so that applications may still hang their own
    # attributes on a connection (as websockets users do); it is only
    # allocated when one does.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_close_timer",
        "_closed_waiter",
        "_drain_waiters",
        "_engine",
        "_failure_timer",
        "_fragmented_send",
        "_id",
        "_keepalive_payload",
        "_keepalive_timeout",
        "_keepalive_timer",
        "_loop",
        "_lost",
        "_messages",
        "_pending",
        "_pings",
        "_rcvd_then_sent",
        "_reading_paused",
        "_recv_waiter",
        "_registry",
        "_resume_queue_at",
        "_transport",
        "_writing_paused",
        "close_timeout",
        "config",
        "debug",
        "latency",
        "logger",
        "max_queue",
        "path",
        "ping_interval",
        "ping_timeout",
        "request_headers",
        "response_headers",
        "subprotocol",
    )

    def __init__(
        self,
        config: Config,
        *,
        engine: Engine | None = None,
        registry: MutableSet[Any] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._id: uuid.UUID | None = None  # drawn on first use: os.urandom is a syscall
        self.config = config
        self.max_queue = config.ws_max_queue
        # Resume reading once the app has drained the queue down to a quarter,
        # so that a busy connection does not pause/resume on every message.
        self._resume_queue_at = config.ws_max_queue // 4
        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self.close_timeout = config.ws_close_timeout
        self.logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = (
            logger if logger is not None else ConnectionLogger(_DEFAULT_LOGGER, self)
        )
        # Checked once: formatting frame lines is the expensive part of logging.
        self.debug = self.logger.isEnabledFor(DEBUG)

        # Set by the face that performs the opening handshake.
        self.path = ""
        self.request_headers = Headers()
        self.response_headers = Headers()
        self.subprotocol: str | None = None
        self.latency = 0.0

        self._engine = engine
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._pending = bytearray()  # bytes that arrived before the engine
        self._lost = False
        self._closed_waiter: asyncio.Future[None] = self._loop.create_future()

        # Incoming messages and the one recv() that may wait for them.
        self._messages: deque[Data] = deque()  # may end with the _FAILURE marker
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False

        # Outgoing flow control.
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._fragmented_send: asyncio.Future[None] | None = None

        # Closing handshake: the engine knows the frames, we know their order.
        self._rcvd_then_sent: bool | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._failure_timer: asyncio.TimerHandle | None = None

        # Pings waiting for their pong: payload -> (waiter or None, sent at).
        self._pings: dict[bytes, tuple[asyncio.Future[float] | None, float]] = {}
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._keepalive_timeout: asyncio.TimerHandle | None = None
        self._keepalive_payload: bytes | None = None

    # ------------------------------------------------------------------
    # attributes of the websockets API

    @property
    def local_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("peername")

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    @property
    def open(self) -> bool:
        """True while messages can be sent and received."""
        engine = self._engine
        return engine is not None and engine.state is _OPEN and not self._lost

    @property
    def closed(self) -> bool:
        """True once the TCP connection is closed."""
        return self._lost

    @property
    def close_code(self) -> int | None:
        """The peer's close code; 1006 if the connection closed without one."""
        rcvd = self.close_rcvd
        if rcvd is not None:
            return rcvd.code
        return ABNORMAL_CLOSURE if self._lost else None

    @property
    def close_reason(self) -> str | None:
        rcvd = self.close_rcvd
        if rcvd is not None:
            return rcvd.reason
        return "" if self._lost else None

    @property
    def close_sent(self) -> Close | None:
        """Our close frame, once sent."""
        return None if self._engine is None else self._engine.close_sent

    @property
    def close_rcvd(self) -> Close | None:
        """The peer's close frame, once received."""
        return None if self._engine is None else self._engine.close_received

    @property
    def reading_paused(self) -> bool:
        """True while the transport is paused because `max_queue` is reached."""
        return self._reading_paused

    @property
    def id(self) -> uuid.UUID:
        """A random UUID naming this connection (in logs, for example)."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    # ------------------------------------------------------------------
    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance.
        self._transport = transport = cast(asyncio.Transport, transport)
        # pause_writing() fires above this many buffered bytes; send() then waits.
        transport.set_write_buffer_limits(high=self.config.ws_write_limit)
        if self._registry is not None:
            self._registry.add(self)
        if self._engine is not None:
            self._start_keepalive()

    def attach_engine(self, engine: Engine) -> None:
        """Open the connection after the opening handshake: bytes buffered so
        far (e.g. a first frame sent in the handshake's packet) go to `engine`."""
        if self._engine is not None:
            raise RuntimeError("the engine is already attached")
        self._engine = engine
        if self._lost:
            return
        self._start_keepalive()
        if self._pending:
            pending = bytes(self._pending)
            self._pending.clear()
            if self._reading_paused:
                self._resume_reading()
            self.data_received(pending)

    def data_received(self, data: bytes) -> None:
        engine = self._engine
        if engine is None:
            # Opening handshake in progress: keep the bytes, bounded by the
            # read limit (TCP backpressure beyond that).
            self._pending += data
            if len(self._pending) >= self.config.ws_read_limit:
                self._pause_reading()
            return
        self._process(engine, engine.receive_data(data))

    def eof_received(self) -> bool | None:
        engine = self._engine
        if engine is not None and not self._lost:
            self._process(engine, engine.receive_eof())
        return None  # let the transport close itself

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drain_waiters()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._corked = None
        for timer in (
            self._close_timer,
            self._keepalive_timer,
            self._keepalive_timeout,
            self._failure_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._keepalive_timer = self._keepalive_timeout = None
        self._failure_timer = None
        self._wake_recv()
        self._wake_drain_waiters()
        closed_exc: ConnectionClosed | None = None
        for waiter, _ in self._pings.values():
            if waiter is not None and not waiter.done():
                closed_exc = closed_exc or self._closed_exception()
                waiter.set_exception(closed_exc)
                # Nobody may await a ping future after the connection closed;
                # mark the exception retrieved so it is not logged as lost.
                waiter.exception()
        self._pings.clear()
        if not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        if self._registry is not None:
            self._registry.discard(self)
        if self.debug:
            self.logger.debug("= connection closed: %s", self._closed_exception())

    # ------------------------------------------------------------------
    # incoming

    def _process(self, engine: Engine, events: list[Event]) -> None:
        """Handle the engine's events, write its automatic replies, and close
        the transport when the closing handshake says so."""
        for event in events:
            if isinstance(event, (TextMessage, BytesMessage)):
                self._deliver(event.data)
            elif isinstance(event, Pong):
                self._pong_received(event.payload)
            elif isinstance(event, Ping):
                if self.debug:
                    self.logger.debug("< PING %s", _hex(event.payload))
            elif isinstance(event, CloseReceived):
                self._on_close_received(event)
            elif isinstance(event, ConnectionFailed):
                self._on_connection_failed(event)
        replies = engine.data_to_send()
        if replies:
            self._write(replies)
        if engine.should_close_transport() and self._transport is not None:
            # RFC 6455 7.1.1: the server closes the TCP connection first once
            # the closing handshake is complete; the client waits for that.
            self._uncork()
            self._transport.close()

    def _deliver(self, data: Data) -> None:
        messages = self._messages
        closing = self._engine is not None and self._engine.state is not _OPEN
        if closing and len(messages) >= self.max_queue:
            # We are closing and the app is not reading: keep reading to see
            # the peer's close frame, but do not let memory grow meanwhile.
            return
        messages.append(data)
        if self.debug:
            self.logger.debug("< %s", _describe(data))
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(messages) >= self.max_queue and not closing:
            # The app is behind: stop reading so TCP pushes back on the peer.
            self._pause_reading()

    def _on_close_received(self, event: CloseReceived) -> None:
        if self.debug:
            self.logger.debug("< CLOSE %d %s", event.code, event.reason)
        if self._rcvd_then_sent is None:
            # We had not sent a close frame: the engine queued its echo.
            self._rcvd_then_sent = True
        self._start_close_timer()
        self._wake_recv()

    def _on_connection_failed(self, event: ConnectionFailed) -> None:
        if self.debug:
            self.logger.debug("! failing connection: %d %s", event.code, event.reason)
        elif event.code != ABNORMAL_CLOSURE:  # a peer that just hangs up is no news
            self.logger.info("WebSocket failed: %d %s", event.code, event.reason)
        if self._messages:
            # Messages that arrived before the error go first, and so do the
            # app's replies to them: the close frame waits until recv() reaches
            # this point in the queue (bounded by the close timeout).
            self._messages.append(_FAILURE)
            self._failure_timer = self._loop.call_later(self.close_timeout, self._send_failure)
        else:
            self._send_failure()
        self._resume_reading()
        self._wake_recv()

    def _send_failure(self) -> None:
        """Send the close frame a protocol error calls for, then wait for the
        peer's close frame (or the close timeout) before closing TCP."""
        if self._failure_timer is not None:
            self._failure_timer.cancel()
            self._failure_timer = None
        engine = self._engine
        if engine is None or self._lost:
            return
        failure = engine.failure
        if failure is not None:
            if self._rcvd_then_sent is None:
                self._rcvd_then_sent = False
            self._write(engine.send_close(failure.code, failure.reason))
        self._start_close_timer()
        if engine.should_close_transport() and self._transport is not None:
            self._uncork()
            self._transport.close()

    def _no_more_messages(self) -> bool:
        """No message can arrive any more and the close frames are known."""
        return self._lost or (self._engine is not None and self._engine.state is _CLOSED)

    async def recv(self) -> Data:
        """The next message: str for text, bytes for binary.

        Cancel-safe: a message is only taken from the queue by the recv()
        that returns it.  Raises ConnectionClosedOK/ConnectionClosedError once
        the queue is empty and the connection is closed.
        """
        while True:
            messages = self._messages
            if messages:
                data = messages.popleft()
                if data is _FAILURE:
                    self._send_failure()
                    continue
                if self._reading_paused and len(messages) <= self._resume_queue_at:
                    self._resume_reading()
                return data
            if self._corked is not None:
                self._uncork()  # the burst is answered: send the replies now
            if self._no_more_messages():
                raise self._closed_exception()
            if self._recv_waiter is not None:
                raise RuntimeError("another coroutine is already waiting in recv()")
            waiter = self._loop.create_future()
            self._recv_waiter = waiter
            try:
                await waiter
            finally:
                self._recv_waiter = None

    def __aiter__(self) -> WebSocketConnection:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------
    # outgoing

    async def send(
        self, message: OutgoingData | Iterable[OutgoingData] | AsyncIterable[OutgoingData]
    ) -> None:
        """Send one message; an (async) iterable is sent as one fragmented message."""
        while self._fragmented_send is not None:
            # Another coroutine is in the middle of a fragmented message;
            # frames of two messages must not interleave.
            await asyncio.shield(self._fragmented_send)
        engine = self._engine
        if engine is None or engine.state is not _OPEN or self._lost:
            engine = await self._open_engine()  # raises: cannot send now
        if isinstance(message, str):
            chunks = engine.send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            chunks = engine.send_binary(message)
        elif isinstance(message, Mapping):
            raise TypeError("a dict is not a WebSocket message; send a str or bytes")
        elif isinstance(message, Iterable):
            await self._send_fragments(iter(message), None)
            return
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(None, message.__aiter__())
            return
        else:
            raise TypeError(f"cannot send {type(message).__name__}: expected str or bytes")
        if self.debug:
            self.logger.debug("> %s", _describe(message))
        self._send_frames(chunks)
        if self._writing_paused:
            await self._drain()

    def write_prepared(self, message: Data, server_frame: list[bytes]) -> str | None:
        """Write a message without awaiting, for `broadcast()`; returns why it
        was skipped, or None when it went out.

        `server_frame` is the message encoded once for every server-side
        connection (unmasked and uncompressed, which RFC 7692 allows on a
        deflate connection too); a client-side connection masks its own copy.
        """
        engine = self._engine
        if engine is None or engine.state is not _OPEN or self._lost:
            return "connection is not open"
        if self._fragmented_send is not None:
            return "a fragmented message is being sent"
        if self._writing_paused:
            return "write buffer above write_limit (slow reader)"
        if engine.is_server:
            self._write(server_frame)
        elif isinstance(message, str):
            self._write(engine.send_text(message))
        else:
            self._write(engine.send_binary(message))
        if self.debug:
            self.logger.debug("> %s (broadcast)", _describe(message))
        return None

    async def _send_fragments(
        self,
        chunks: Iterator[OutgoingData] | None,
        achunks: Any,  # AsyncIterator[OutgoingData] | None
    ) -> None:
        # Claimed before the first await so that no other send() slips in.
        done = self._fragmented_send = self._loop.create_future()
        started = False
        try:
            try:
                first = next(chunks) if chunks is not None else await achunks.__anext__()
            except (StopIteration, StopAsyncIteration):
                return  # an empty iterable sends nothing, like websockets
            # The first fragment decides text or binary; a wrong type is
            # refused before anything is on the wire.
            if isinstance(first, str):
                kind: type | tuple[type, ...] = str
                last: OutgoingData = ""
            elif isinstance(first, (bytes, bytearray, memoryview)):
                kind, last = (bytes, bytearray, memoryview), b""
            else:
                raise TypeError(f"cannot send {type(first).__name__}: expected str or bytes")
            engine = await self._open_engine()
            self._write(engine.send_fragment(first, fin=False))
            started = True
            while True:
                try:
                    chunk = next(chunks) if chunks is not None else await achunks.__anext__()
                except (StopIteration, StopAsyncIteration):
                    break
                if not isinstance(chunk, kind):
                    raise TypeError("all fragments of a message must be all str or all bytes")
                self._write(engine.send_fragment(cast(OutgoingData, chunk), fin=False))
                if self._writing_paused:
                    await self._drain()
            self._write(engine.send_fragment(last, fin=True))
            if self.debug:
                self.logger.debug("> fragmented %s message", "TEXT" if kind is str else "BINARY")
        except BaseException:
            if started:
                # Half a message is on the wire and cannot be completed: fail
                # the connection with 1011 (internal error), as websockets does.
                self.start_close(1011, "error in fragmented message")
            raise
        finally:
            self._fragmented_send = None
            done.set_result(None)
        if self._writing_paused:
            await self._drain()

    async def ping(self, data: str | BytesLike | None = None) -> asyncio.Future[float]:
        """Send a ping; the returned future resolves to the latency in seconds
        when the matching pong (or a pong for a later ping) arrives."""
        engine = await self._open_engine()
        if data is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in self._pings:
                raise RuntimeError("already waiting for a pong with the same data")
        chunks = engine.send_ping(payload)  # ValueError above 125 bytes
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._pings[payload] = (waiter, self._loop.time())
        if self.debug:
            self.logger.debug("> PING %s", _hex(payload))
        self._write(chunks)
        if self._writing_paused:
            await self._drain()
        return waiter

    async def pong(self, data: str | BytesLike = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat)."""
        engine = await self._open_engine()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._write(engine.send_pong(payload))
        if self._writing_paused:
            await self._drain()

    def _pong_received(self, payload: bytes) -> None:
        if self.debug:
            self.logger.debug("< PONG %s", _hex(payload))
        pings = self._pings
        if payload not in pings:
            return  # unsolicited pong: nothing to resolve
        now = self._loop.time()
        # A pong acknowledges its ping and every ping sent before it.
        for key, (waiter, sent_at) in list(pings.items()):
            del pings[key]
            latency = now - sent_at
            if waiter is not None and not waiter.done():
                waiter.set_result(latency)
            if key == self._keepalive_payload:
                self._keepalive_acknowledged(latency)
            if key == payload:
                self.latency = latency
                break

    def _write(self, chunks: list[bytes]) -> None:
        """Write frames now, behind any held by `_send_frames`."""
        transport = self._transport
        if transport is None:
            raise RuntimeError("the connection has no transport yet")
        corked = self._corked
        if corked is not None:
            corked.extend(chunks)
            self._uncork()
        elif len(chunks) == 1:
            transport.write(chunks[0])
        else:
            transport.writelines(chunks)

    def _send_frames(self, chunks: list[bytes]) -> None:
        """Write a message's frames for `send()`, held while a burst is answered."""
        corked = self._corked
        if corked is not None:
            corked.extend(chunks)
            self._corked_size += sum(map(len, chunks))
            if not self._messages or self._corked_size >= _CORK_LIMIT:
                self._uncork()  # the last reply of the burst (or enough held)
            return
        if self._messages and len(chunks) == 1 and len(chunks[0]) < _CORK_LIMIT:
            if self._transport is None:
                raise RuntimeError("the connection has no transport yet")
            # More received messages wait for the app: its replies to them
            # will follow in this same step, so hold this frame to write them
            # together.  The callback bounds the delay to one loop iteration.
            self._corked = [chunks[0]]
            self._corked_size = len(chunks[0])
            self._loop.call_soon(self._uncork)
            return
        self._write(chunks)

    def _uncork(self) -> None:
        """Write the frames held back by `_write`, in one call."""
        corked = self._corked
        if corked is None:
            return
        self._corked = None
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            return
        if len(corked) == 1:
            transport.write(corked[0])
        else:
            transport.writelines(corked)

    async def _drain(self) -> None:
        """Wait until the transport's buffer is below the write limit."""
        while self._writing_paused and not self._lost:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._drain_waiters:
                    self._drain_waiters.remove(waiter)
        if self._lost:
            raise self._closed_exception()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _open_engine(self) -> Engine:
        """The engine, or ConnectionClosed if messages can no longer be sent."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("the opening handshake is not complete")
        if self.open:
            return engine
        if not self._lost and engine.state is not _CLOSED:
            # We sent a close frame: let the closing handshake finish (bounded
            # by close_timeout) so the exception carries the peer's code.
            await self.wait_closed()
        raise self._closed_exception()

    # ------------------------------------------------------------------
    # closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake, at most `close_timeout` seconds."""
        self.start_close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the TCP connection is closed."""
        await asyncio.shield(self._closed_waiter)

    def shutdown(self) -> None:
        """Graceful server shutdown: close with the server's going-away code
        (1012 service restart for the ASGI server, 1001 for `serve()`)."""
        self.start_close(self.config.ws_shutdown_close_code, "")

    def start_close(self, code: int, reason: str) -> None:
        """Begin the closing handshake without waiting for it: send our close
        frame (once), arm the close timeout, keep reading for the peer's close.
        `close()` is this plus `wait_closed()`."""
        transport = self._transport
        if transport is None or self._lost:
            return
        engine = self._engine
        if engine is None:
            # No WebSocket yet (opening handshake): there is nothing to close
            # gracefully, only the TCP connection.
            transport.close()
            return
        if engine.state is _OPEN:
            # ValueError for a code that may not be sent: the caller's mistake.
            chunks = engine.send_close(code, reason)
            if self._rcvd_then_sent is None:
                self._rcvd_then_sent = False
            if self.debug:
                self.logger.debug("> CLOSE %d %s", code, reason)
            self._write(chunks)
        self._start_close_timer()
        # The peer's close frame may be behind messages the app will never
        # read: keep reading until it arrives.
        self._resume_reading()
        if engine.should_close_transport():
            self._uncork()
            transport.close()

    def _start_close_timer(self) -> None:
        if self._close_timer is None and not self._lost:
            self._close_timer = self._loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if self._transport is not None and not self._lost:
            self.logger.info("WebSocket closing handshake timed out; dropping the connection")
            self._transport.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        if self._transport is not None and not self._lost:
            self._transport.abort()

    def _closed_exception(self) -> ConnectionClosed:
        return connection_closed(self.close_rcvd, self.close_sent, self._rcvd_then_sent)

    def _wake_recv(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------
    # read flow control

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None and not self._lost:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None and not self._lost:
            self._reading_paused = False
            self._transport.resume_reading()

    # ------------------------------------------------------------------
    # keepalive

    def _start_keepalive(self) -> None:
        if self.ping_interval is not None and self._keepalive_timer is None:
            self._keepalive_timer = self._loop.call_later(self.ping_interval, self._keepalive_ping)

    def _keepalive_ping(self) -> None:
        self._keepalive_timer = None
        engine = self._engine
        if engine is None or not self.open:
            return
        payload = os.urandom(4)
        while payload in self._pings:
            payload = os.urandom(4)
        self._keepalive_payload = payload
        self._pings[payload] = (None, self._loop.time())
        if self.debug:
            self.logger.debug("> PING %s [keepalive]", _hex(payload))
        self._write(engine.send_ping(payload))
        if self.ping_timeout is not None:
            # The next ping is scheduled when this one is answered.
            self._keepalive_timeout = self._loop.call_later(
                self.ping_timeout, self._keepalive_timed_out
            )
        else:
            self._start_keepalive()

    def _keepalive_acknowledged(self, latency: float) -> None:
        self._keepalive_payload = None
        if self._keepalive_timeout is not None:
            self._keepalive_timeout.cancel()
            self._keepalive_timeout = None
            assert self.ping_interval is not None
            self._keepalive_timer = self._loop.call_later(
                max(0.0, self.ping_interval - latency), self._keepalive_ping
            )

    def _keepalive_timed_out(self) -> None:
        self._keepalive_timeout = None
        self.logger.info("WebSocket keepalive ping timeout; closing the connection")
        self.start_close(1011, "keepalive ping timeout")
        # The peer is unresponsive: do not wait for its close frame (RFC 6455
        # 7.1.7, fail the connection); the close timer aborts if the buffered
        # bytes cannot be flushed.
        if self._transport is not None and not self._lost:
            self._uncork()
            self._transport.close()


def _describe(data: OutgoingData) -> str:
    """`TEXT 'hello' [5 bytes]` / `BINARY 00 01 [2 bytes]` for DEBUG frame lines."""
    if isinstance(data, str):
        text = repr(data)
        if len(text) > _PAYLOAD_LOG_LIMIT:
            text = text[: _PAYLOAD_LOG_LIMIT - 6] + "..." + text[-3:]
        return f"TEXT {text} [{len(data.encode())} bytes]"
    return f"BINARY {_hex(data)} [{len(data)} bytes]"


def _hex(data: BytesLike) -> str:
    """Hex dump of a payload, truncated for log lines."""
    limit = _PAYLOAD_LOG_LIMIT // 3
    if len(data) <= limit:
        return bytes(data).hex(" ")
    return bytes(data[: limit - 2]).hex(" ") + " ..."
