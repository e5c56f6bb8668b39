"""`Hub`: publish/subscribe for WebSocket apps, on one process or many.

    hub = asgiws.Hub("redis://localhost:6379/0")   # or "memory://" (default)
    async with hub:                                 # or start()/close() in lifespan
        await hub.join("room", websocket)           # messages on "room" reach it
        await hub.publish("room", "hello")          # every process's members get it
        async with hub.subscribe("room") as sub:    # and Python code, too
            async for message in sub: ...

A joined WebSocket costs no task.  Under asgiws the hub reaches the
connection object through the scope's `asgiws.connection` extension (or is
given it by `serve(handler)`): a message for N local members is framed once
and written N times without awaiting (`WebSocketConnection.write_prepared`),
at most `fanout.CHUNK` members per loop iteration (`Fanout`); members whose
server side negotiated permessage-deflate with no_context_takeover share one
compressed frame per compression setting (`SharedFrames`), the others get
the uncompressed frame.
Under any other ASGI server it sends through the app's WebSocket object
(`send(message)`), each member with a bounded outbox and a sender task that
only exists while there is something to send.

Slow members: a member whose queued outgoing bytes exceed `max_queued`
misses the message (`slow_subscriber="drop"`, counted in `stats.dropped`
and reported to the server's observer as a `slow_reader` broadcast skip) or
is closed with 1013 Try Again Later (`slow_subscriber="close"`).  Nobody
waits for a slow member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from asgiws.asgi.websocket import CONNECTION_EXTENSION
from asgiws.connection import WebSocketConnection
from asgiws.hub.errors import HubError
from asgiws.hub.fanout import Fanout
from asgiws.hub.members import SLOW_CLOSE_CODE, AsgiMember
from asgiws.hub.memory_backend import MemoryBackend
from asgiws.hub.redis_backend import RedisBackend
from asgiws.hub.shared_frames import Compressors
from asgiws.hub.subscription import Subscription
from asgiws.hub.wire import Data, check_message, validate_channel

__all__ = ["Hub", "HubStats"]

logger = logging.getLogger("asgiws.hub")

SlowPolicy = Literal["drop", "close"]
SLOW_POLICIES = ("drop", "close")
PLAIN_MAX_QUEUED = 2**16
"""Outbox bound of a plain-path member when `max_queued` is None (the
default of `ws_write_limit`, which bounds a fast-path member then)."""
SWEEP_INTERVAL = 2.0
"""Seconds between passes that drop members whose WebSocket has closed."""
SCHEMES = ("memory", "redis", "rediss", "unix")


@dataclass(slots=True)
class HubStats:
    """Counts since the hub started, for this process."""

    published: int = 0  # publish() calls that succeeded
    delivered: int = 0  # messages written (or queued) to a local member or subscription
    dropped: int = 0  # messages a slow member or subscription missed
    closed_slow: int = 0  # members closed with 1013 by the `close` policy
    compressed: int = 0  # shared compressions: one per message per compression setting in use


class _Channel:
    """This process's members of one channel."""

    __slots__ = ("connections", "fanout", "members", "subscriptions", "watched")

    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout  # the fast path
        self.connections = fanout.connections
        self.members: dict[int, AsgiMember] = {}  # the plain path, by id(websocket)
        self.subscriptions: set[Subscription] = set()
        # Set once the engine confirmed the subscription (Redis SUBSCRIBE).
        self.watched: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __bool__(self) -> bool:
        return bool(self.connections or self.members or self.subscriptions)


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"Hub({name}=...) must be a number above 0, not {value!r}")


class Hub:
    """Channels shared by this process's WebSockets, or by many processes' through Redis.

    `url`: ``memory://`` (one process) or ``redis://[:password@]host:port/db``,
    ``rediss://...`` (TLS), ``unix:///path/redis.sock``.
    `slow_subscriber`: ``"drop"`` or ``"close"`` (1013), for a member whose
    queued outgoing bytes exceed `max_queued` (default: the connection's
    write limit, ``ws_write_limit``; 64 KiB on the plain path), and for a
    subscription more than `subscription_queue` messages behind.
    `prefix`: the Redis channel of hub channel C is prefix + C.
    `timeout`: seconds for Redis to answer (connect, publish, subscribe).
    `reconnect_min`/`reconnect_max`: backoff between reconnection attempts.
    `health_interval`: seconds between PINGs on the subscription connection.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        slow_subscriber: SlowPolicy = "drop",
        max_queued: int | None = None,
        subscription_queue: int = 1000,
        prefix: str = "asgiws:",
        timeout: float = 5.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
        health_interval: float = 5.0,
    ) -> None:
        scheme = urlsplit(url).scheme if isinstance(url, str) else ""
        if scheme not in SCHEMES:
            raise ValueError(
                f"unsupported hub URL {url!r}: use memory://, redis://host:port/db, "
                "rediss://host:port/db or unix:///path/to/redis.sock"
            )
        if slow_subscriber not in SLOW_POLICIES:
            raise ValueError(
                f"Hub(slow_subscriber={slow_subscriber!r}): expected 'drop' or 'close'"
            )
        if max_queued is not None and (
            isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 0
        ):
            raise ValueError(f"Hub(max_queued=...) must be None or bytes >= 0, not {max_queued!r}")
        if (
            isinstance(subscription_queue, bool)
            or not isinstance(subscription_queue, int)
            or (subscription_queue < 1)
        ):
            raise ValueError(
                f"Hub(subscription_queue=...) must be an int >= 1, not {subscription_queue!r}"
            )
        for name, value in (
            ("timeout", timeout),
            ("reconnect_min", reconnect_min),
            ("reconnect_max", reconnect_max),
            ("health_interval", health_interval),
        ):
            _positive(name, value)
        if reconnect_max < reconnect_min:
            raise ValueError("Hub(reconnect_max=...) must be at least reconnect_min")
        if not isinstance(prefix, str):
            raise TypeError("Hub(prefix=...) must be a str")
        self.url = url
        self.slow_subscriber: SlowPolicy = slow_subscriber
        self.max_queued = max_queued
        self.subscription_queue = subscription_queue
        self._close_slow = slow_subscriber == "close"
        self._backend: MemoryBackend | RedisBackend
        if scheme == "memory":
            self._backend = MemoryBackend()
        else:
            self._backend = RedisBackend(
                url,
                prefix=prefix,
                timeout=timeout,
                reconnect_min=reconnect_min,
                reconnect_max=reconnect_max,
                health_interval=health_interval,
            )
        self._channels: dict[str, _Channel] = {}
        self._plain: dict[int, AsgiMember] = {}
        self._started = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._compressors: Compressors = {}
        self.stats = HubStats()

    def __repr__(self) -> str:
        return f"<Hub {self._backend.describe()}>"

    @property
    def connected(self) -> bool:
        """True while publish() can publish (always, for memory://)."""
        return self._started and self._backend.connected

    # --- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        """Connect (Redis: HubUnavailable when it cannot be reached)."""
        if self._started:
            raise RuntimeError("the hub is already started")
        await self._backend.start(self._deliver)
        self._started = True
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    async def close(self) -> None:
        """Disconnect; subscriptions end, members stay open but get no more messages."""
        if not self._started:
            return
        self._started = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.fanout.cancel()
            for subscription in channel.subscriptions:
                subscription.end(StopAsyncIteration())
        plain, self._plain = self._plain, {}
        for member in plain.values():
            if member.task is not None:
                member.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._compressors.clear()
        await self._backend.close()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _check_started(self) -> None:
        if not self._started:
            raise HubError("the hub is not started: use `async with hub:` or `await hub.start()`")

    # --- publishing -------------------------------------------------------------
    async def publish(self, channel: str, message: str | bytes | bytearray | memoryview) -> None:
        """Send `message` (str: a text frame, bytes: binary) to every member
        of `channel`, in this process and (Redis) every other one.
        HubUnavailable while Redis is unreachable: the message is not sent."""
        self._check_started()
        validate_channel(channel)
        data = check_message(message)
        await self._backend.publish(channel, data)
        self.stats.published += 1

    # --- members ----------------------------------------------------------------
    async def join(self, channel: str, websocket: Any) -> None:
        """Deliver `channel`'s messages to `websocket` until it leaves or closes.

        `websocket`: an asgiws `WebSocketConnection` (serve(handler)), or an
        accepted ASGI WebSocket object such as Starlette's/FastAPI's
        `WebSocket` (anything with `scope` and an ASGI `send(message)`).
        Joining twice is joining once.
        """
        self._check_started()
        validate_channel(channel)
        conn = _connection_of(websocket)
        if conn is None and not callable(getattr(websocket, "send", None)):
            raise TypeError(
                "join() takes a WebSocketConnection or an ASGI WebSocket object "
                f"with scope and send(message), not {type(websocket).__name__}"
            )
        entry = await self._enter(channel)
        if conn is not None:
            if not conn.closed:
                entry.connections[conn] = None
        else:
            key = id(websocket)
            member = self._plain.get(key)
            if member is None:
                member = self._plain[key] = AsgiMember(websocket, self._forget)
            member.channels.add(channel)
            entry.members[key] = member
        await self._settle(channel, entry)

    async def leave(self, channel: str, websocket: Any) -> None:
        """Stop delivering `channel` to `websocket` (nothing if it was not a member)."""
        validate_channel(channel)
        entry = self._channels.get(channel)
        if entry is None:
            return
        conn = _connection_of(websocket)
        if conn is not None:
            entry.fanout.discard(conn)
        else:
            member = entry.members.pop(id(websocket), None)
            if member is not None:
                member.channels.discard(channel)
                if not member.channels:
                    self._plain.pop(id(websocket), None)
        await self._drop_if_empty(channel, entry)

    def members(self, channel: str) -> int:
        """How many WebSockets of this process are in `channel`."""
        entry = self._channels.get(channel)
        return 0 if entry is None else len(entry.connections) + len(entry.members)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """`async with hub.subscribe(channel) as sub: async for message in sub`."""
        self._check_started()
        validate_channel(channel)
        subscription = Subscription(channel, self.subscription_queue, self._close_slow)
        entry = await self._enter(channel)
        entry.subscriptions.add(subscription)
        try:
            await self._settle(channel, entry)
            yield subscription
        finally:
            entry.subscriptions.discard(subscription)
            if self._started:
                await self._drop_if_empty(channel, entry)

    async def _enter(self, channel: str) -> _Channel:
        entry = self._channels.get(channel)
        if entry is None:
            close_slow = self._close_slow_connection if self._close_slow else None
            fanout = Fanout(self._compressors, self.stats, self.max_queued, close_slow)
            entry = self._channels[channel] = _Channel(fanout)
            task = asyncio.get_running_loop().create_task(self._backend.watch(channel))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _t: _resolve(entry.watched))
        return entry

    async def _settle(self, channel: str, entry: _Channel) -> None:
        """Wait until the engine confirmed the channel's subscription, so that
        what is published after join()/subscribe() returns arrives."""
        await asyncio.shield(entry.watched)

    async def _drop_if_empty(self, channel: str, entry: _Channel) -> None:
        if not entry and self._channels.get(channel) is entry:
            del self._channels[channel]
            await self._backend.unwatch(channel)

    def _forget(self, member: AsgiMember) -> None:
        """A plain-path WebSocket is gone: out of every channel."""
        key = id(member.websocket)
        if self._plain.get(key) is member:
            del self._plain[key]
        for channel in member.channels:
            entry = self._channels.get(channel)
            if entry is not None and entry.members.get(key) is member:
                del entry.members[key]
                self._unwatch_later(channel, entry)
        member.channels.clear()

    def _unwatch_later(self, channel: str, entry: _Channel) -> None:
        if not entry and self._channels.get(channel) is entry and self._started:
            task = asyncio.get_running_loop().create_task(self._drop_if_empty(channel, entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _sweep(self) -> None:
        """Members whose WebSocket closed leave by themselves."""
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)
        for channel, entry in list(self._channels.items()):
            closed = [conn for conn in entry.connections if conn.closed]
            for conn in closed:
                del entry.connections[conn]
            for member in [m for m in entry.members.values() if m.gone and m.task is None]:
                self._forget(member)
            self._unwatch_later(channel, entry)

    # --- delivery -----------------------------------------------------------------
    def _deliver(self, channel: str, message: Data) -> None:
        """One message for this process's members of `channel`: to the
        fast-path connections framed once (and compressed once per shared
        compression setting) and written without awaiting, in passes of at
        most `fanout.CHUNK` members per loop iteration (`Fanout`); queued for
        the plain-path members and the subscriptions."""
        entry = self._channels.get(channel)
        if entry is None:
            return
        entry.fanout.publish(message)
        stats = self.stats
        delivered = dropped = 0
        if entry.members:
            size = len(message.encode("utf-8")) if isinstance(message, str) else len(message)
            bound = PLAIN_MAX_QUEUED if self.max_queued is None else self.max_queued
            for member in list(entry.members.values()):
                if member.put(message, size, bound):
                    delivered += 1
                elif not member.closing:
                    dropped += 1
                    if self._close_slow:
                        stats.closed_slow += 1
                        member.close_slow(self._slow_reason(bound))
        for subscription in entry.subscriptions:
            if subscription.put(message):
                delivered += 1
            else:
                dropped += 1
        stats.delivered += delivered
        stats.dropped += dropped
        if not entry:
            self._unwatch_later(channel, entry)

    def _close_slow_connection(self, conn: WebSocketConnection) -> None:
        self.stats.closed_slow += 1
        bound = conn.options.write_limit if self.max_queued is None else self.max_queued
        logger.info("hub closed a slow subscriber (%s) with 1013", conn.remote_address)
        conn.start_close(SLOW_CLOSE_CODE, self._slow_reason(bound))

    @staticmethod
    def _slow_reason(bound: int) -> str:
        return f"slow subscriber: more than {bound} bytes queued"


def _connection_of(websocket: Any) -> WebSocketConnection | None:
    """The asgiws connection behind `websocket`, when there is one (the fast path)."""
    if isinstance(websocket, WebSocketConnection):
        return websocket
    scope = getattr(websocket, "scope", None)
    if isinstance(scope, Mapping):
        extensions = scope.get("extensions") or {}
        conn = extensions.get(CONNECTION_EXTENSION)
        if isinstance(conn, WebSocketConnection):
            return conn
    return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
