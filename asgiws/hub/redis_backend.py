"""`redis://` and `rediss://`: processes (on one host or many) share channels
through Redis pub/sub, with redis-py's asyncio client (extra `redis`).

Per process there is one Redis subscription per channel that has local
subscribers, however many there are, so a message reaches each process once
and is fanned out there; a reconnection resubscribes every such channel
once.  Publishes go out in order over one pipeline at a time, so the
messages one process publishes on a channel arrive in that order.

While Redis is unreachable `publish()` raises `HubUnavailable` at once:
nothing is buffered (Redis pub/sub is at-most-once, and a buffer replayed
after an outage would deliver old news late).  The reader reconnects with
exponential backoff and jitter, resubscribes, and only then does the hub
count as connected again.  Messages published by other processes while this
one was disconnected are lost for its subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from asgiws.hub.errors import HubUnavailable
from asgiws.hub.memory_backend import Deliver
from asgiws.hub.wire import Data, decode, encode

__all__ = ["RedisBackend"]

logger = logging.getLogger("asgiws.hub")

MAX_BATCH = 1000
"""Most publishes sent in one pipeline (one round trip)."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisBackend:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout: float,
        reconnect_min: float,
        reconnect_max: float,
        health_interval: float,
    ) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise ImportError(
                "a redis:// hub needs redis-py: pip install 'asgiws[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (
            aioredis.RedisError,
            OSError,
            asyncio.TimeoutError,
        )
        self._where = redacted(url)
        # No retries inside redis-py: a lost connection must surface here, so
        # that publish() fails at once and the reader resubscribes.
        options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        # Two clients, two pools: the subscriber's connection is long-lived,
        # the publisher's pool is dropped whenever the subscriber reconnects.
        self._sub_client = aioredis.Redis.from_url(url, **options)
        self._pub_client = aioredis.Redis.from_url(url, **options)
        self._prefix = prefix.encode("utf-8")
        self._timeout = timeout
        self._reconnect = (reconnect_min, reconnect_max)
        self._health_interval = health_interval
        # A channel of our own, always subscribed: it keeps the pub/sub
        # connection in subscribed mode, and its confirmation, the last of a
        # (re)subscription, says every channel is in.
        self._control = self._prefix + b"__hub__:" + uuid.uuid4().hex.encode()
        self._channels: set[str] = set()  # hub channels with local subscribers
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}
        self._deliver: Deliver | None = None
        self._pubsub: Any = None
        self._subscribed: set[str] = set()  # what the current connection asked for
        self._reader: asyncio.Task[None] | None = None
        self._outgoing: deque[tuple[bytes, bytes, asyncio.Future[None]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._last_seen = 0.0  # loop time of the last reply on the subscription
        self.connected = False
        self.reconnections = 0

    def describe(self) -> str:
        return self._where

    # --- lifecycle ------------------------------------------------------------
    async def start(self, deliver: Deliver) -> None:
        """Connect and subscribe, or raise HubUnavailable: a hub whose Redis
        is unreachable at start-up fails the start-up (the lifespan)."""
        self._deliver = deliver
        try:
            pubsub = await self._connect()
        except self._errors as exc:
            raise HubUnavailable(f"cannot reach Redis at {self._where}: {exc}") from None
        self._reader = asyncio.get_running_loop().create_task(self._run(pubsub))
        try:
            await asyncio.wait_for(self._ready.wait(), self._timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise HubUnavailable(
                f"Redis at {self._where} did not confirm the subscription"
            ) from None

    async def close(self) -> None:
        self._deliver = None
        for task in (self._reader, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._flusher = None
        self._fail_outgoing(HubUnavailable("the hub is closed"))
        await self._drop_pubsub()
        await self._sub_client.aclose()
        await self._pub_client.aclose()
        self.connected = False

    # --- subscribing ----------------------------------------------------------
    async def watch(self, channel: str) -> None:
        """This process has its first subscriber on `channel`: subscribe, and
        wait (at most the timeout) until Redis confirms, so a message
        published after this returns reaches it.  While disconnected it only
        takes note: the reconnection subscribes it."""
        self._channels.add(channel)
        pubsub = self._pubsub
        if not self.connected or pubsub is None or channel in self._subscribed:
            return
        name = self._prefix + channel.encode("utf-8")
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(name, []).append(confirmed)
        self._subscribed.add(channel)
        try:
            await pubsub.subscribe(name)
            await asyncio.wait_for(asyncio.shield(confirmed), self._timeout)
        except self._errors as exc:
            # The reader sees the same failure and resubscribes everything.
            logger.debug("subscribing to %r failed: %r", channel, exc)

    async def unwatch(self, channel: str) -> None:
        self._channels.discard(channel)
        pubsub = self._pubsub
        if not self.connected or pubsub is None or channel not in self._subscribed:
            return
        self._subscribed.discard(channel)
        with contextlib.suppress(*self._errors):
            await pubsub.unsubscribe(self._prefix + channel.encode("utf-8"))

    async def _connect(self) -> Any:
        pubsub = self._sub_client.pubsub()
        channels = set(self._channels)
        names = [self._prefix + c.encode("utf-8") for c in channels]
        try:
            await pubsub.subscribe(*names, self._control)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self._subscribed = channels
        return pubsub

    async def _run(self, pubsub: Any) -> None:
        """The reader: deliver messages; on a lost connection, reconnect with
        backoff and resubscribe."""
        low, high = self._reconnect
        delay = low
        while True:
            if pubsub is None:
                try:
                    pubsub = await self._connect()
                except self._errors as exc:
                    logger.debug("Redis at %s still unreachable: %r", self._where, exc)
                    # Full jitter: many processes do not come back in lockstep.
                    await asyncio.sleep(random.uniform(delay / 2, delay))
                    delay = min(delay * 2, high)
                    continue
                delay = low
            self._pubsub = pubsub
            try:
                await self._listen(pubsub)
            except self._errors as exc:
                logger.warning(
                    "hub lost Redis at %s (%s); reconnecting",
                    self._where,
                    exc or type(exc).__name__,
                )
            finally:
                self._disconnected()
            await self._drop_pubsub()
            # Publishes on the old connections would fail one by one.
            with contextlib.suppress(Exception):
                await self._pub_client.connection_pool.disconnect()
            pubsub = None
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def _listen(self, pubsub: Any) -> None:
        """Until the connection fails: messages, confirmations, health pongs."""
        loop = asyncio.get_running_loop()
        watchdog = loop.create_task(self._watch_health(pubsub))
        reading = loop.create_task(self._read(pubsub))
        try:
            done, _ = await asyncio.wait({watchdog, reading}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended it
            raise ConnectionError("the Redis subscription ended")
        finally:
            for task in (watchdog, reading):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _read(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        control = self._control
        prefix, skip = self._prefix, len(self._prefix)
        async for message in pubsub.listen():
            self._last_seen = loop.time()
            kind = message["type"]
            if kind == "message":
                name: bytes = message["channel"]
                if name.startswith(prefix) and name != control:
                    self._received(name[skip:], message["data"])
            elif kind == "subscribe":
                name = message["channel"]
                if name == control:
                    await self._reconcile(pubsub)
                for future in self._confirmations.pop(name, ()):
                    if not future.done():
                        future.set_result(None)

    async def _reconcile(self, pubsub: Any) -> None:
        """Every channel is subscribed: channels watched or unwatched during
        the (re)connection are caught up, then the hub counts as connected."""
        missing = self._channels - self._subscribed
        stale = self._subscribed - self._channels
        if missing:
            await pubsub.subscribe(*(self._prefix + c.encode("utf-8") for c in missing))
        if stale:
            await pubsub.unsubscribe(*(self._prefix + c.encode("utf-8") for c in stale))
        self._subscribed = set(self._channels)
        if self._ready.is_set():  # not the first connection
            logger.info(
                "hub reconnected to Redis at %s; %d channel(s) resubscribed",
                self._where,
                len(self._subscribed),
            )
        self.connected = True
        self._ready.set()

    async def _watch_health(self, pubsub: Any) -> None:
        """A connection that silently stopped answering (a host gone without
        RST) is noticed within two health intervals: PING, expect any reply."""
        loop = asyncio.get_running_loop()
        interval = self._health_interval
        self._last_seen = loop.time()
        while True:
            await asyncio.sleep(interval)
            if loop.time() - self._last_seen > 2 * interval:
                raise ConnectionError(f"no answer from Redis for {2 * interval:g} s")
            await pubsub.ping()

    def _received(self, channel: bytes, payload: bytes) -> None:
        deliver = self._deliver
        if deliver is None:
            return
        try:
            name = channel.decode("utf-8")
            message = decode(payload)
        except ValueError as exc:
            logger.warning("hub dropped a message on Redis channel %r: %s", channel, exc)
            return
        deliver(name, message)

    def _disconnected(self) -> None:
        if self.connected:
            self.reconnections += 1
        self.connected = False
        self._pubsub = None
        self._subscribed = set()
        for futures in self._confirmations.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)  # watch() stops waiting; reconnect subscribes
        self._confirmations.clear()

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    # --- publishing -----------------------------------------------------------
    async def publish(self, channel: str, message: Data) -> None:
        if not self.connected:
            raise HubUnavailable(
                f"Redis at {self._where} is unreachable (reconnecting): message not published"
            )
        done = asyncio.get_running_loop().create_future()
        self._outgoing.append((self._prefix + channel.encode("utf-8"), encode(message), done))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await done

    async def _flush(self) -> None:
        """Send queued publishes in order, one pipeline (round trip) at a time."""
        outgoing = self._outgoing
        try:
            while outgoing:
                batch = [outgoing.popleft() for _ in range(min(len(outgoing), MAX_BATCH))]
                try:
                    async with self._pub_client.pipeline(transaction=False) as pipe:
                        for name, payload, _ in batch:
                            pipe.publish(name, payload)
                        await pipe.execute()
                except self._errors as exc:
                    error = HubUnavailable(
                        f"publishing to Redis at {self._where} failed: {exc or type(exc).__name__}"
                    )
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                else:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._flusher = None

    def _fail_outgoing(self, error: BaseException) -> None:
        while self._outgoing:
            _, _, done = self._outgoing.popleft()
            if not done.done():
                done.set_exception(error)
