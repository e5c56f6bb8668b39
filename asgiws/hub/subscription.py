"""`Subscription`: the messages of one channel for Python code
(`async with hub.subscribe(channel) as sub: async for message in sub`)."""

from __future__ import annotations

import asyncio
from collections import deque

from asgiws.hub.errors import SlowSubscriber
from asgiws.hub.wire import Data

__all__ = ["Subscription"]


class Subscription:
    """Messages published on `channel` since the subscription started, in
    order.  At most `max_queue` wait to be read: beyond that a message is
    dropped and counted in `dropped` (policy `drop`), or the iteration ends
    with `SlowSubscriber` (policy `close`).  The iteration ends when the hub
    closes."""

    __slots__ = (
        "_close_on_overflow",
        "_ended",
        "_max_queue",
        "_messages",
        "_waiter",
        "channel",
        "dropped",
    )

    def __init__(self, channel: str, max_queue: int, close_on_overflow: bool) -> None:
        self.channel = channel
        self.dropped = 0
        self._max_queue = max_queue
        self._close_on_overflow = close_on_overflow
        self._messages: deque[Data] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended: BaseException | None = None

    def put(self, message: Data) -> bool:
        """Queue a message; False when it was dropped (the reader is behind)."""
        if self._ended is not None:
            return False
        if len(self._messages) >= self._max_queue:
            self.dropped += 1
            if self._close_on_overflow:
                self.end(
                    SlowSubscriber(
                        f"subscription to {self.channel!r} fell {self._max_queue} messages behind"
                    )
                )
            return False
        self._messages.append(message)
        self._wake()
        return True

    def end(self, reason: BaseException) -> None:
        """No more messages: the iteration raises `reason` once the queue is read
        (StopAsyncIteration: it just ends)."""
        if self._ended is None:
            self._ended = reason
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Data:
        """The next message; StopAsyncIteration once the subscription ended."""
        while True:
            if self._messages:
                return self._messages.popleft()
            if self._ended is not None:
                raise self._ended
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Data:
        return await self.get()
