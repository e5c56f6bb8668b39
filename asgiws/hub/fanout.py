"""One channel's fast-path members, and the messages on their way to them.

A message goes out in a *pass* over the members: each gets the frame encoded
once (`SharedFrames`) through `WebSocketConnection.write_prepared`, with no
await.  A pass writes at most `CHUNK` members per event-loop iteration:

- a fan-out to 10,000 members does not hold the loop for all of them at
  once (other connections are served between chunks), and a chunk's bytes
  reach the kernel at the end of its own iteration, while that chunk's
  transports are still warm in the cache;
- what is published while a pass is under way waits for it to end, then
  goes out in the next pass, all of it to one member in one loop iteration:
  the event loop hands a transport everything written to it in an
  iteration in one system call, so under load a member costs one `send`
  per pass rather than one per message.  Per channel, every member gets the
  messages in publish order.

A channel of at most `CHUNK` members idle before the publish gets the whole
pass before `publish()` returns, as with a plain loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from asgiws.connection import WebSocketConnection
from asgiws.hub.shared_frames import Compressors, SharedFrames
from asgiws.hub.wire import Data
from asgiws.observer import BroadcastSkipReason
from asgiws.websocket.deflate import SharedCompressionKey

__all__ = ["CHUNK", "Fanout", "FanoutStats"]

CHUNK = 256
"""Members a pass writes per event-loop iteration."""

_NOT_OPEN = BroadcastSkipReason.NOT_OPEN


class FanoutStats(Protocol):
    """What a fan-out counts (`HubStats` has these fields)."""

    delivered: int
    dropped: int
    compressed: int


class Fanout:
    """Passes over `connections`; `publish(message)` starts one or queues
    the message for the next."""

    __slots__ = (
        "_batch",
        "_close_slow",
        "_compressors",
        "_cursor",
        "_handle",
        "_max_queued",
        "_members",
        "_next",
        "_stats",
        "connections",
    )

    def __init__(
        self,
        compressors: Compressors,
        stats: FanoutStats,
        max_queued: int | None,
        close_slow: Callable[[WebSocketConnection], None] | None,
    ) -> None:
        self.connections: dict[WebSocketConnection, None] = {}
        self._compressors = compressors
        self._stats = stats
        self._max_queued = max_queued
        self._close_slow = close_slow  # the `close` policy; None: `drop`
        # The pass under way: its messages, its members (a snapshot), the next member.
        self._batch: list[tuple[Data, SharedFrames]] = []
        self._members: list[WebSocketConnection] | None = None
        self._cursor = 0
        self._next: list[Data] = []  # published during a pass: the next pass
        self._handle: asyncio.Handle | None = None

    def publish(self, message: Data) -> None:
        if self._members is not None or self._handle is not None:
            self._next.append(message)  # joins the next pass
        elif self.connections:
            self._start([message])

    def discard(self, conn: WebSocketConnection) -> None:
        """`conn` leaves: out of the channel, and out of the pass under way
        (rare next to deliveries: a search here, no check per member)."""
        if conn not in self.connections:
            return
        del self.connections[conn]
        members = self._members
        if members is not None:
            with contextlib.suppress(ValueError):  # not found: already written to
                del members[members.index(conn, self._cursor)]

    def cancel(self) -> None:
        """The hub closes: what has not gone out stays unsent."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._members = None
        self._batch = []
        self._next = []

    def _start(self, messages: list[Data]) -> None:
        compressors = self._compressors
        self._batch = [(message, SharedFrames(message, compressors)) for message in messages]
        self._members = list(self.connections)
        self._cursor = 0
        self._write_chunk()

    def _next_pass(self) -> None:
        self._handle = None
        messages, self._next = self._next, []
        if messages and self.connections:
            self._start(messages)

    def _resume(self) -> None:
        self._handle = None
        self._write_chunk()

    def _write_chunk(self) -> None:
        members = self._members
        if members is None:
            return
        end = self._cursor + CHUNK
        self._write(members[self._cursor : end], self._batch)
        self._cursor = end
        loop = asyncio.get_running_loop()
        if end < len(members):
            self._handle = loop.call_soon(self._resume)
            return
        self._stats.compressed += sum(frames.compressions for _, frames in self._batch)
        self._members = None
        self._batch = []
        if self._next:
            # Started on the next iteration: what is published until then joins it.
            self._handle = loop.call_soon(self._next_pass)

    def _write(
        self,
        members: list[WebSocketConnection],
        batch: list[tuple[Data, SharedFrames]],
    ) -> None:
        """Each message of `batch` to each of `members`, in order."""
        connections = self.connections
        bound = self._max_queued
        delivered = dropped = 0
        left: list[WebSocketConnection] | None = None
        if len(batch) == 1:  # the common case, kept flat: one call per member
            message, frames = batch[0]
            frame, compressed = frames.plain, frames.compressed
            for conn in members:
                why = conn.write_prepared(message, frame, bound, compressed)
                if why is None:
                    delivered += 1
                    continue
                if why is not _NOT_OPEN:
                    dropped += 1
                    if self._close_slow is None:
                        continue
                    self._close_slow(conn)
                (left := left or []).append(conn)
        else:  # several messages: one write (one system call) per member
            messages, joined, joined_compressed = _joined(batch)
            count = len(batch)
            for conn in members:
                why = conn.write_prepared_many(messages, joined, bound, joined_compressed)
                if why is None:
                    delivered += count
                    continue
                if why is not _NOT_OPEN:
                    dropped += count
                    if self._close_slow is None:
                        continue
                    self._close_slow(conn)
                (left := left or []).append(conn)
        if left:
            for conn in left:
                connections.pop(conn, None)
        stats = self._stats
        stats.delivered += delivered
        stats.dropped += dropped


def _joined(
    batch: list[tuple[Data, SharedFrames]],
) -> tuple[list[Data], list[bytes], Callable[[SharedCompressionKey], list[bytes]]]:
    """A batch's messages, their frames as one bytes object, and their
    compressed frames joined per key (on first demand)."""
    joined: dict[SharedCompressionKey, list[bytes]] = {}

    def compressed(key: SharedCompressionKey) -> list[bytes]:
        frame = joined.get(key)
        if frame is None:
            frame = joined[key] = [
                b"".join([chunk for _, frames in batch for chunk in frames.compressed(key)])
            ]
        return frame

    plain = [b"".join([chunk for _, frames in batch for chunk in frames.plain])]
    return [message for message, _ in batch], plain, compressed
