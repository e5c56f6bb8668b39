"""`WebSocketConnection`: the asyncio WebSocket connection behind every face.

The ASGI adapter, the `serve(handler)` API and the `connect()` client are
thin faces over it; the engine passed in decides the role (server or client).
It composes parts with one job each and keeps only what joins them:

- `Inbox` (inbox.py): received messages, the one waiting `recv()`, the
  `max_queue` read pause, the messages still owed before a protocol error's
  close frame;
- `Writer` (writer.py): frames to the transport, replies to a burst held and
  written together, the drain behind `pause_writing`/`resume_writing`;
- `Keepalive` (keepalive.py): pings in flight and the keepalive timers;
- `Closing` (closing.py): the close timeout and the deferral of the close
  frame owed after a protocol error;
- `Reporter` (reporting.py): what the server's observer hears, only when
  somebody subscribed.

Cost per message is kept small on purpose: no task per message or per
connection, no queue between `send()` and the transport when the transport
accepts the write, and timers are `loop.call_later` handles.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, MutableMapping, MutableSet
from typing import TYPE_CHECKING, Any, cast

from asgiws.connection import shared_write
from asgiws.connection.closing import Closing
from asgiws.connection.describe import describe, hex_dump
from asgiws.connection.inbox import IDLE, Data, Inbox
from asgiws.connection.keepalive import Keepalive
from asgiws.connection.options import ConnectionLoggerLike, ConnectionOptions
from asgiws.connection.reporting import Reporter
from asgiws.connection.writer import Burst, Writer
from asgiws.datastructures import Headers
from asgiws.exceptions import (
    ABNORMAL_CLOSURE,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidState,
    WebSocketException,
    connection_closed,
    failure_exception,
)
from asgiws.observer import BroadcastSkipReason, Observer
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
    from collections.abc import Callable

    from asgiws.websocket.deflate import SharedCompressionKey
    from asgiws.websocket.frames import Close

__all__ = ["ConnectionLogger", "WebSocketConnection", "write_prepared_to_each"]

BytesLike = bytes | bytearray | memoryview
OutgoingData = str | BytesLike

DEBUG = logging.DEBUG
_OPEN, _CLOSED = EngineState.OPEN, EngineState.CLOSED
_DEFAULT_LOGGER = logging.getLogger("asgiws.websocket")


EVENTS_PER_TURN = 256
"""Events (messages, pings, pongs) one connection handles in one turn of the
event loop before the rest of its read waits for the next turn: no peer can
hold the loop, and every other connection, for the length of a big read.
(Messages stop a turn sooner, at max_queue; this bounds control frames.)
With 1,024, four ping floods held `/health` at ~100 ms (p50); with 256 and
2 KiB slices, ~20 ms (docs/SECURITY.md)."""
SMALL_SLICE = 2 * 1024
"""Bytes per engine call while a peer sends floods of tiny frames: ~190
pings, about a millisecond, so that a turn ends close to EVENTS_PER_TURN."""


# One empty Headers for every connection until the handshake sets its own
# (the ASGI face and the client replace both at once).  Read-only.
_NO_HEADERS = Headers()


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Log records carry `extra={"websocket": connection}`, as in the
    websockets library (the logger it wraps may itself be the user's
    LoggerAdapter, which then finds the connection in `kwargs["extra"]`,
    as the websockets logging guide shows), but the connection is held weakly: a closed
    connection is then freed by reference counting alone, not left for the
    cyclic garbage collector, whose full passes over thousands of closed
    connections stalled the server for 100-300 ms."""

    def __init__(self, logger: ConnectionLoggerLike, connection: WebSocketConnection) -> None:
        super().__init__(logger, None)  # type: ignore[arg-type]  # an adapter logs as well
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

    # Thousands of idle connections each hold one: fixed attributes in slots,
    # and what an idle connection does not need (the logger adapter, the
    # closed waiter, the pre-handshake buffer) is made on first use.
    # `__dict__` stays so that applications may still hang their own
    # attributes on a connection (as websockets users do); it is only
    # allocated when one does.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_closed_waiter",
        "_closing",
        "_engine",
        "_failure",
        "_fragmented_send",
        "_id",
        "_inbox",
        "_keepalive",
        "_logger",
        "_lost",
        "_pending",
        "_registry",
        "_reporter",
        "_slice",
        "_writer",
        "debug",
        "latency",
        "loop",
        "options",
        "path",
        "request_headers",
        "response_headers",
        "subprotocol",
    )

    def __init__(
        self,
        options: ConnectionOptions,
        *,
        engine: Engine | None = None,
        registry: MutableSet[Any] | None = None,
        observer: Observer | None = None,
        reported_client: Any = None,
    ) -> None:
        self.options = options
        self._id: uuid.UUID | None = None  # drawn on first use: os.urandom is a syscall
        # The adapter that adds extra={"websocket": self} is made on first use.
        self._logger: ConnectionLoggerLike | None = None
        # Checked once: formatting frame lines is the expensive part of logging.
        self.debug = (options.logger or _DEFAULT_LOGGER).isEnabledFor(DEBUG)
        # Why the peer's data ended the connection (PayloadTooBig or
        # ProtocolError): the __cause__ of ConnectionClosed, as in websockets.
        self._failure: WebSocketException | None = None

        # Set by the face that performs the opening handshake.
        self.path = ""
        self.request_headers = _NO_HEADERS
        self.response_headers = _NO_HEADERS
        self.subprotocol: str | None = None
        self.latency = 0.0
        # The loop the transport runs on, set by connection_made (no
        # typing.cast: it is a Python call).  Kept rather than asked for:
        # asyncio.get_running_loop() is a getpid() system call on Python
        # 3.11, and recv() needs the loop for every message it waits for.
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]

        self._engine = engine
        self._registry = registry
        self._pending: bytearray | None = None  # bytes that arrived before the engine
        # Bytes parsed per engine call: read_limit, or SMALL_SLICE while the
        # peer sends floods of tiny frames (see _feed).
        self._slice = options.read_limit
        self._lost = False
        self._closed_waiter: asyncio.Future[None] | None = None
        self._fragmented_send: asyncio.Future[None] | None = None
        self._inbox = Inbox(options.max_queue)
        self._writer = Writer()
        # Made on first use: most connections never ping (ping_interval None)
        # and never close while their peer idles.
        self._keepalive: Keepalive | None = None
        self._closing: Closing | None = None
        # `reported_client`: who the observer hears about, when that is not
        # the transport's peer (a client named by a trusted proxy's headers).
        self._reporter = None if observer is None else Reporter(observer, reported_client)

    # ------------------------------------------------------------------
    # attributes of the websockets API

    @property
    def logger(self) -> ConnectionLoggerLike:
        logger = self._logger
        if logger is None:
            logger = self._logger = ConnectionLogger(self.options.logger or _DEFAULT_LOGGER, self)
        return logger

    @logger.setter
    def logger(self, logger: ConnectionLoggerLike) -> None:
        self._logger = logger

    @property
    def local_address(self) -> Any:
        transport = self._writer.transport
        return None if transport is None else transport.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        transport = self._writer.transport
        return None if transport is None else transport.get_extra_info("peername")

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._writer.transport

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
    def handshake_done(self) -> bool:
        """True once the opening handshake completed (messages may flow)."""
        return self._engine is not None

    @property
    def reading_paused(self) -> bool:
        """True while the transport is paused because `max_queue` is reached."""
        return self._inbox.paused

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
        self._writer.transport = self._inbox.transport = transport = cast(
            asyncio.Transport, transport
        )
        self.loop = self._writer.loop = asyncio.get_running_loop()
        # pause_writing() fires above this many buffered bytes; send() then waits.
        transport.set_write_buffer_limits(high=self.options.write_limit)
        if self._registry is not None:
            self._registry.add(self)
        if self._engine is not None:
            self._opened()

    def write_with_burst(self, data: bytes, burst: Burst) -> None:
        """Write `data` (the 101 response) with `burst`, on the next loop
        turn, ahead of anything this connection writes (`Burst`)."""
        burst.hold(self._writer, data)

    def attach_engine(self, engine: Engine) -> None:
        """Open the connection after the opening handshake: bytes buffered so
        far (e.g. a first frame sent in the handshake's packet) go to `engine`."""
        if self._engine is not None:
            raise RuntimeError("the engine is already attached")
        self._engine = engine
        if self._lost:
            return
        self._opened()
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._inbox.resume_reading()
            self.data_received(bytes(pending))

    def _opened(self) -> None:
        self._start_keepalive()
        reporter = self._reporter
        if reporter is not None:
            reporter.opened(self.path, self.remote_address, self.subprotocol)

    def data_received(self, data: bytes) -> None:
        engine = self._engine
        if engine is None:
            # Opening handshake in progress: keep the bytes, bounded by the
            # read limit (TCP backpressure beyond that).
            pending = self._pending
            if pending is None:
                pending = self._pending = bytearray()
            pending += data
            if len(pending) >= self.options.read_limit:
                self._inbox.pause_reading()
            return
        if self._pending is not None or self._inbox.paused:
            self._hold(data)  # the app is max_queue messages behind
        elif len(data) > self._slice:
            self._feed(engine, data)
        else:
            self._process(engine, engine.receive_data(data))

    def _feed(self, engine: Engine, data: bytes | bytearray) -> None:
        """Parse `data` read_limit bytes at a time, and stop once the app is
        max_queue messages behind: the rest waits, unparsed, until recv()
        has drained the queue.  So at most max_queue messages and read_limit
        unparsed bytes are held for an app that does not read, as with
        websockets (whose read_limit bounds its stream reader's buffer)."""
        view = memoryview(data)
        handled = start = 0
        while start < len(data):
            if self._inbox.paused and not self._lost:
                self._hold(view[start:])
                return
            if handled >= EVENTS_PER_TURN and not self._lost:
                # A read full of tiny frames (a ping flood holds ~25,000 in
                # 256 KiB, ~3 us each): the rest waits for the next loop
                # turn, so that the other connections are served in between.
                self._hold(view[start:])
                self.loop.call_soon(self._next_turn)
                return
            end = start + self._slice
            events = engine.receive_data(view[start:end])  # the engine copies what it keeps
            start = end
            handled += len(events)
            # Many events from one slice: smaller slices from now on, so one
            # turn's work stays near EVENTS_PER_TURN; few: back to read_limit,
            # which big frames need to be parsed in few calls.
            self._slice = (
                SMALL_SLICE if len(events) >= EVENTS_PER_TURN // 4 else self.options.read_limit
            )
            self._process(engine, events)

    def _next_turn(self) -> None:
        """Go on with a read that `_feed` cut short, unless the app has since
        fallen max_queue messages behind (then recv() resumes it)."""
        inbox = self._inbox
        if len(inbox.messages) < inbox.max_queue:
            self._resume_reading()

    def _hold(self, data: bytes | bytearray | memoryview) -> None:
        pending = self._pending
        if pending is None:
            pending = self._pending = bytearray()
        pending += data
        self._inbox.pause_reading()

    def _resume_reading(self) -> None:
        """Read again: first the bytes held while the app was behind."""
        self._inbox.resume_reading()
        pending, engine = self._pending, self._engine
        if pending is not None and engine is not None and not self._inbox.paused:
            self._pending = None
            self._feed(engine, pending)

    def eof_received(self) -> bool | None:
        engine = self._engine
        if engine is not None and not self._lost:
            pending = self._pending
            if pending is not None:  # bytes held for a slow app come before the end
                self._pending = None
                self._process(engine, engine.receive_data(bytes(pending)))
            self._process(engine, engine.receive_eof())
        return None  # let the transport close itself

    def pause_writing(self) -> None:
        self._writer.pause()
        reporter = self._reporter
        if reporter is not None:
            reporter.writes_paused(self.remote_address)

    def resume_writing(self) -> None:
        self._writer.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._writer.connection_lost()
        self._inbox.connection_lost()
        closing, keepalive = self._closing, self._keepalive
        if closing is not None:
            closing.stop()
        if keepalive is not None:
            keepalive.stop(self._closed_exception)
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._registry is not None:
            self._registry.discard(self)
        reporter = self._reporter
        if reporter is not None:
            reporter.closed(
                self.path,
                self.remote_address,
                self.close_rcvd,
                self.close_sent,
                self._rcvd_then_sent,
            )
        if self.debug:
            self.logger.debug("= connection closed: %s", self._closed_exception())

    # ------------------------------------------------------------------
    # incoming

    def _process(self, engine: Engine, events: list[Event]) -> None:
        """Handle the engine's events, write its automatic replies, and close
        the transport when the closing handshake says so."""
        inbox, reporter = self._inbox, self._reporter
        only_messages = bool(events)
        close_received = False
        for event in events:
            if isinstance(event, (TextMessage, BytesMessage)):
                data = event.data
                # Past our close frame, messages beyond max_queue are dropped.
                if inbox.put(data, engine.state is not _OPEN):
                    if self.debug:
                        self.logger.debug("< %s", describe(data))
                    if reporter is not None:
                        reporter.received(data)
                continue
            only_messages = False
            if isinstance(event, Pong):
                self._pong_received(event.payload)
            elif isinstance(event, Ping):
                if self.debug:
                    self.logger.debug("< PING %s", hex_dump(event.payload))
            elif isinstance(event, CloseReceived):
                self._close_received(event)
                close_received = True
            elif isinstance(event, ConnectionFailed):
                self._connection_failed(event)
        if only_messages:
            # Nothing but data messages: the engine queued no frame and its
            # closing state did not move (`Engine.receive_data`), so the
            # common read skips the two calls below.
            return
        replies = engine.data_to_send()
        if replies:
            self._writer.write(replies)
        closed_at_once = False
        if engine.should_close_transport():
            # RFC 6455 7.1.1: the server closes the TCP connection first once
            # the closing handshake is complete; the client waits for that.
            closed_at_once = self._writer.close_transport() and self.options.closes_at_once
        if close_received and not closed_at_once:
            # The close timeout bounds what is left: the peer's TCP close,
            # or a close() that still has bytes (or a TLS shutdown) to finish.
            self._arm_close_timer()

    def _close_received(self, event: CloseReceived) -> None:
        # (When we had not sent a close frame, the engine queued its echo.)
        if self.debug:
            self.logger.debug("< CLOSE %d %s", event.code, event.reason)
        self._inbox.wake()

    def _connection_failed(self, event: ConnectionFailed) -> None:
        if event.code != ABNORMAL_CLOSURE:
            self._failure = failure_exception(event.code, event.reason)
        if self.debug:
            self.logger.debug("! failing connection: %d %s", event.code, event.reason)
        elif event.code != ABNORMAL_CLOSURE:  # a peer that just hangs up is no news
            self.logger.info("WebSocket failed: %d %s", event.code, event.reason)
        inbox = self._inbox
        undelivered = inbox.undelivered()
        if undelivered:
            # Messages that arrived before the error go first, and so do the
            # app's replies to them: the close frame waits until recv() has
            # delivered them (bounded by the close timeout).
            inbox.owed_close_after = undelivered
            self._closing_part().defer_owed_close(self.options.close_timeout, self._send_owed_close)
        else:
            self._send_owed_close()
        self._resume_reading()
        inbox.wake()

    def _send_owed_close(self) -> None:
        """Send the close frame a protocol error calls for, then wait for the
        peer's close frame (or the close timeout) before closing TCP."""
        closing = self._closing
        if closing is not None:
            closing.owed_close_sent()
        self._inbox.owed_close_after = None
        engine = self._engine
        if engine is None or self._lost:
            return
        failure = engine.failure
        if failure is not None:
            self.start_close(failure.code, failure.reason)
        else:
            # Nothing owed any more (the app closed first, or the peer just
            # hung up): keep the closing handshake going.
            self._continue_closing(engine)

    async def recv(self) -> Data:
        """The next message: str for text, bytes for binary.

        Cancel-safe: a message is only taken from the queue by the recv()
        that returns it.  Raises ConnectionClosedOK/ConnectionClosedError once
        the queue is empty and the connection is closed.
        """
        inbox = self._inbox
        while True:
            messages = inbox.messages
            if messages and not inbox.paused and inbox.owed_close_after is None:
                return messages.popleft()  # the common case, inline
            if inbox.owed_close_after == 0:
                self._send_owed_close()  # the app has read up to the error
            if messages:
                data = inbox.take()
                if self._pending is not None and not inbox.paused:
                    self._resume_reading()  # parse what was held for us
                return data
            writer = self._writer
            if writer.corked is not None and not writer.in_burst:
                # The received messages are answered: send the replies now
                # (bytes held by a `Burst` wait for it instead).
                writer.flush()
            # No message can arrive any more and the close frames are known.
            if self._lost or (self._engine is not None and self._engine.state is _CLOSED):
                raise self._closed_exception()
            if inbox.waiter is not None:
                raise RuntimeError("another coroutine is already waiting in recv()")
            if messages is not IDLE:
                # A burst is over: no deque held while waiting (nor by this frame).
                inbox.messages = messages = IDLE
            # Awaited here rather than in an Inbox coroutine: one frame less per wait.
            waiter: asyncio.Future[Data | None] = self.loop.create_future()
            inbox.waiter = waiter
            try:
                handed = await waiter
            except asyncio.CancelledError:
                inbox.handed_back(waiter)
                raise
            finally:
                inbox.waiter = None
            if handed is not None:  # put() handed it over: it was never queued
                if inbox.owed_close_after is not None or inbox.paused:
                    inbox.delivered()
                    if self._pending is not None and not inbox.paused:
                        self._resume_reading()
                return handed

    def __aiter__(self) -> WebSocketConnection:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            # Only a normal close ends the loop; an error close is raised,
            # as in websockets, so that the handler sees what went wrong.
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
            self.logger.debug("> %s", describe(message))
        reporter = self._reporter
        if reporter is not None:
            reporter.sent(message)
        writer = self._writer
        writer.write_message(chunks, self._inbox.messages)
        if writer.paused:
            await self._drain()

    def write_prepared(
        self,
        message: Data,
        server_frame: list[bytes],
        max_queued: int | None = None,
        compressed: Callable[[SharedCompressionKey], list[bytes]] | None = None,
    ) -> BroadcastSkipReason | None:
        """Write a message without awaiting, for `broadcast()`; returns why it
        was skipped, or None when it went out.

        `server_frame` is the message encoded once for every server-side
        connection (unmasked and uncompressed, which RFC 7692 allows on a
        deflate connection too); a client-side connection masks its own copy.
        `compressed(key)`: the message's compressed frame for a
        `shared_compression_key` (computed once per key by the caller), sent
        instead by a server connection that has a key.
        A slow reader is skipped above the write limit, or, with `max_queued`
        (`asgiws.Hub`), once its queued outgoing bytes exceed that bound.
        """
        engine = self._engine
        if engine is None or engine.state is not _OPEN or self._lost:
            return self._broadcast_skipped(BroadcastSkipReason.NOT_OPEN)
        if self._fragmented_send is not None:
            return self._broadcast_skipped(BroadcastSkipReason.FRAGMENTED_SEND)
        writer = self._writer
        if writer.paused if max_queued is None else writer.queued() > max_queued:
            return self._broadcast_skipped(BroadcastSkipReason.SLOW_READER)
        if engine.sends_plain_frames:  # a server without an extension chain
            frame = server_frame
            if compressed is not None:
                key = engine.shared_compression_key
                if key is not None:
                    frame = compressed(key)
            transport = writer.transport
            if writer.corked is None and transport is not None and len(frame) == 1:
                transport.write(frame[0])  # Writer.write's common case, inline
            else:
                writer.write(frame)
        elif isinstance(message, str):
            writer.write(engine.send_text(message))
        else:
            writer.write(engine.send_binary(message))
        if self.debug:
            self.logger.debug("> %s (broadcast)", describe(message))
        reporter = self._reporter
        if reporter is not None:
            reporter.sent(message)
        return None

    def write_prepared_many(
        self,
        messages: list[Data],
        server_frames: list[bytes],
        max_queued: int | None = None,
        compressed: Callable[[SharedCompressionKey], list[bytes]] | None = None,
    ) -> BroadcastSkipReason | None:
        """`write_prepared` for several messages in one transport write (one
        system call): `server_frames` are their frames, encoded once;
        `compressed(key)` their shared compressed frames.  All or none: a
        skip skips every message (reported once per message)."""
        engine = self._engine
        if engine is None or engine.state is not _OPEN or self._lost:
            return self._broadcast_skipped(BroadcastSkipReason.NOT_OPEN, len(messages))
        if self._fragmented_send is not None:
            return self._broadcast_skipped(BroadcastSkipReason.FRAGMENTED_SEND, len(messages))
        writer = self._writer
        if writer.paused if max_queued is None else writer.queued() > max_queued:
            return self._broadcast_skipped(BroadcastSkipReason.SLOW_READER, len(messages))
        if engine.sends_plain_frames:  # a server without an extension chain
            frames = server_frames
            if compressed is not None:
                key = engine.shared_compression_key
                if key is not None:
                    frames = compressed(key)
            writer.write(frames)
        else:
            chunks: list[bytes] = []
            for message in messages:
                if isinstance(message, str):
                    chunks += engine.send_text(message)
                else:
                    chunks += engine.send_binary(message)
            writer.write(chunks)
        debug, reporter = self.debug, self._reporter
        for message in messages:
            if debug:
                self.logger.debug("> %s (broadcast)", describe(message))
            if reporter is not None:
                reporter.sent(message)
        return None

    def _broadcast_skipped(
        self, reason: BroadcastSkipReason, messages: int = 1
    ) -> BroadcastSkipReason:
        reporter = self._reporter
        if reporter is not None:
            for _ in range(messages):
                reporter.broadcast_skipped(self.remote_address, reason)
        return reason

    async def _send_fragments(
        self,
        chunks: Iterator[OutgoingData] | None,
        achunks: Any,  # AsyncIterator[OutgoingData] | None
    ) -> None:
        # Claimed before the first await so that no other send() slips in.
        done = self._fragmented_send = self.loop.create_future()
        writer = self._writer
        reporter = self._reporter
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
            chunk: Any = first
            while True:
                writer.write(engine.send_fragment(cast(OutgoingData, chunk), fin=False))
                started = True
                if reporter is not None:
                    reporter.sent(chunk, ends_message=False)
                if writer.paused:
                    await self._drain()
                try:
                    chunk = next(chunks) if chunks is not None else await achunks.__anext__()
                except (StopIteration, StopAsyncIteration):
                    break
                if not isinstance(chunk, kind):
                    raise TypeError("all fragments of a message must be all str or all bytes")
            writer.write(engine.send_fragment(last, fin=True))
            if reporter is not None:
                reporter.sent(last)
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
        if writer.paused:
            await self._drain()

    async def ping(self, data: str | BytesLike | None = None) -> asyncio.Future[float]:
        """Send a ping; the returned future resolves to the latency in seconds
        when the matching pong (or a pong for a later ping) arrives."""
        engine = await self._open_engine()
        keepalive = self._keepalive_part()
        if data is None:
            payload = keepalive.new_payload()
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in keepalive.pings:
                raise RuntimeError("already waiting for a pong with the same data")
        chunks = engine.send_ping(payload)  # ValueError above 125 bytes
        waiter: asyncio.Future[float] = self.loop.create_future()
        keepalive.sent(payload, waiter)
        if self.debug:
            self.logger.debug("> PING %s", hex_dump(payload))
        self._writer.write(chunks)
        if self._writer.paused:
            await self._drain()
        return waiter

    async def pong(self, data: str | BytesLike = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat)."""
        engine = await self._open_engine()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._writer.write(engine.send_pong(payload))
        if self._writer.paused:
            await self._drain()

    def _pong_received(self, payload: bytes) -> None:
        if self.debug:
            self.logger.debug("< PONG %s", hex_dump(payload))
        keepalive = self._keepalive
        if keepalive is None:
            return  # no ping of ours in flight: an unsolicited pong
        latency, keepalive_latency = keepalive.acknowledge(payload)
        if keepalive_latency is not None:
            self._keepalive_answered(keepalive_latency)
        if latency is not None:
            self.latency = latency
            reporter = self._reporter
            if reporter is not None:
                reporter.ping_round_trip(self.remote_address, latency)

    async def _drain(self) -> None:
        """Wait until the transport's buffer is below the write limit."""
        await self._writer.drain()
        if self._lost:
            raise self._closed_exception()

    async def _open_engine(self) -> Engine:
        """The engine, or ConnectionClosed if messages can no longer be sent."""
        engine = self._engine
        if engine is None:
            raise InvalidState("the opening handshake is not complete")
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
        if self._lost:
            return
        waiter = self._closed_waiter
        if waiter is None:
            waiter = self._closed_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(waiter)

    def shutdown(self) -> None:
        """Graceful server shutdown: close with the server's going-away code
        (1012 service restart for the ASGI server, 1001 for `serve()`)."""
        self.start_close(self.options.shutdown_close_code, "")

    def start_close(self, code: int, reason: str) -> None:
        """Begin the closing handshake without waiting for it: send our close
        frame (once), arm the close timeout, keep reading for the peer's close.
        `close()` is this plus `wait_closed()`."""
        transport = self._writer.transport
        if transport is None or self._lost:
            return
        engine = self._engine
        if engine is None:
            # No WebSocket yet (opening handshake): there is nothing to close
            # gracefully, only the TCP connection.
            transport.close()
            return
        state = engine.state
        if state is _OPEN:
            # ValueError for a code that may not be sent: the caller's mistake.
            chunks = engine.send_close(code, reason)
            if self.debug:
                self.logger.debug("> CLOSE %d %s", code, reason)
            self._writer.write(chunks)
        elif state is _CLOSED and transport.is_closing():
            # Both close frames went and TCP is being closed (the ASGI app
            # returning after the peer's close): what is left is bounded
            # already (`_process` armed the close timer where it could hang).
            return
        self._continue_closing(engine)

    def _continue_closing(self, engine: Engine) -> None:
        """Our close frame is out (or none can be sent): bound the wait for
        the peer's, and close TCP when the engine says the exchange is over."""
        self._arm_close_timer()
        # The peer's close frame may be behind messages the app will never
        # read: keep reading until it arrives.
        self._resume_reading()
        if engine.should_close_transport():
            self._writer.close_transport()

    def _arm_close_timer(self) -> None:
        if not self._lost:
            self._closing_part().arm(self.options.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._closing_part().timer = None
        if not self._lost:
            self.logger.info("WebSocket closing handshake timed out; dropping the connection")
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        transport = self._writer.transport
        if transport is not None and not self._lost:
            transport.abort()

    @property
    def _rcvd_then_sent(self) -> bool | None:
        """Which close frame came first: True the peer's, False ours, None neither."""
        return None if self._engine is None else self._engine.rcvd_then_sent

    def _closed_exception(self) -> ConnectionClosed:
        engine = self._engine  # (read once: the three properties would each look)
        if engine is None:
            exc = connection_closed(None, None, None)
        else:
            exc = connection_closed(engine.close_received, engine.close_sent, engine.rcvd_then_sent)
        exc.__cause__ = self._failure
        return exc

    def closed_exception(self) -> ConnectionClosed:
        """What recv() and send() raise once the connection is closed."""
        return self._closed_exception()

    # ------------------------------------------------------------------
    # keepalive

    def _keepalive_part(self) -> Keepalive:
        keepalive = self._keepalive
        if keepalive is None:
            keepalive = self._keepalive = Keepalive()
        return keepalive

    def _closing_part(self) -> Closing:
        closing = self._closing
        if closing is None:
            closing = self._closing = Closing()
        return closing

    def _start_keepalive(self) -> None:
        interval = self.options.ping_interval
        if interval is not None:
            keepalive = self._keepalive_part()
            if keepalive.timer is None:
                keepalive.schedule(interval, self._keepalive_ping)

    def _keepalive_ping(self) -> None:
        keepalive = self._keepalive_part()
        keepalive.timer = None
        engine = self._engine
        if engine is None or not self.open:
            return
        payload = keepalive.new_payload()
        keepalive.sent(payload, None)
        if self.debug:
            self.logger.debug("> PING %s [keepalive]", hex_dump(payload))
        self._writer.write(engine.send_ping(payload))
        timeout = self.options.ping_timeout
        if timeout is not None:
            # The next ping is scheduled when this one is answered.
            keepalive.await_pong(timeout, self._keepalive_timed_out)
        else:
            self._start_keepalive()

    def _keepalive_answered(self, latency: float) -> None:
        interval = self.options.ping_interval
        keepalive = self._keepalive_part()
        if keepalive.pong_arrived() and interval is not None:
            keepalive.schedule(max(0.0, interval - latency), self._keepalive_ping)

    def _keepalive_timed_out(self) -> None:
        self._keepalive_part().timeout = None
        engine = self._engine
        if engine is None or self._lost:
            return
        self.logger.info("WebSocket keepalive ping timeout; closing the connection")
        # RFC 6455 7.1.7: fail the connection.  The peer is unresponsive: do
        # not wait for its close frame either; the close timer aborts if the
        # buffered bytes cannot be flushed.
        engine.fail(1011, "keepalive ping timeout")
        self._writer.write(engine.data_to_send())
        self._arm_close_timer()
        self._writer.close_transport()


def write_prepared_to_each(
    connections: Iterable[WebSocketConnection],
    messages: list[Data],
    server_frames: list[bytes],
    max_queued: int | None = None,
    compressed: Callable[[SharedCompressionKey], list[bytes]] | None = None,
) -> tuple[int, list[tuple[WebSocketConnection, BroadcastSkipReason]] | None]:
    """`WebSocketConnection.write_prepared` (one message) or
    `write_prepared_many` (several) to each of `connections`: how many
    connections it went to, and those it skipped with why (None: none).

    A fan-out writes the same bytes to thousands of connections in a row, so
    the common case -- an open server connection with plain frames, nothing
    corked, nobody listening to its reports, below the bound -- is checked
    here, in the loop, without a method call per member (that was a quarter
    of the user-space work of a delivery).  Those members' transports get
    the bytes in one `shared_write.write_each` call after the loop, straight
    to their sockets where the transport holds nothing; without the C
    accelerator, each transport's `write()` in the loop.  Anything else goes
    through the method, which decides and reports.

    With the C accelerator, `shared_write.write_plain` first runs the same
    checks and writes over the whole list (the loop's checks were ~60 % of
    a delivery's user-space instructions), and the loop only sees the
    members it gave back: those on their first fan-out (socket not looked
    up yet) and everything that is not the common case.
    """
    data = server_frames[0] if len(server_frames) == 1 else None
    one = messages[0] if len(messages) == 1 else None
    written = 0
    write_plain = shared_write.write_plain
    if write_plain is not None and data is not None:
        # The common case below, checked and written in C; the loop gets the
        # rest.  (A set, as broadcast() is often given, is listed first.)
        members = connections if type(connections) is list else list(connections)
        written, connections = write_plain(members, data, max_queued)
    skipped: list[tuple[WebSocketConnection, BroadcastSkipReason]] | None = None
    # The common case's members, for write_each: their transports and sockets
    # (one member appears once per call, so no member's bytes change order).
    write_each = shared_write.write_each
    transports: list[asyncio.Transport] = []
    fds: list[int] = []
    for conn in connections:
        engine = conn._engine
        writer = conn._writer
        transport = writer.transport
        if (
            data is not None
            and transport is not None
            and writer.corked is None
            and engine is not None
            and engine.state is _OPEN
            and engine.sends_plain_frames
            and engine.shared_compression_key is None
            and not conn._lost
            and conn._fragmented_send is None
            and conn._reporter is None
            and not conn.debug
            and (
                not writer.paused
                if max_queued is None
                else transport.get_write_buffer_size() <= max_queued
            )
        ):
            if write_each is None:
                transport.write(data)
            else:
                fd = writer.fd
                if fd is None:
                    fd = writer.fd = shared_write.stream_fd(transport)
                transports.append(transport)
                fds.append(fd)
            written += 1
            continue
        if one is not None:
            why = conn.write_prepared(one, server_frames, max_queued, compressed)
        else:
            why = conn.write_prepared_many(messages, server_frames, max_queued, compressed)
        if why is None:
            written += 1
        else:
            (skipped := skipped or []).append((conn, why))
    if transports:
        assert write_each is not None and data is not None  # (what collects them)
        write_each(transports, fds, data)
    return written, skipped


# The classes whose slots the C `write_plain` reads for the loop above.
shared_write.bind_plain(WebSocketConnection, Writer, Engine, _OPEN)
