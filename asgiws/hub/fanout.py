"""One channel's fast-path members, and the messages on their way to them.

A message goes out in a *pass* over the members: the frame is encoded once
(`SharedFrames`) and written to each member by
`asgiws.connection.write_prepared_to_each`, with no await.  A pass writes at
most `CHUNK` members per event-loop iteration, so a fan-out to 10,000
members does not hold the loop for all of them at once (other connections
are served between chunks).

What is published while a pass is under way waits for it to end and goes
out in the next pass, joined: each member gets all of those messages in one
transport write (one system call) rather than one per message, which is
what keeps a busy channel's cost per delivery falling as its rate rises.  A
channel larger than one chunk starts its pass on the loop iteration after
the publish, so what else is published in the same iteration (several
messages read from one socket, say) joins it; a channel of at most `CHUNK`
members idle before the publish gets the whole pass before `publish()`
returns, as with a plain loop.  Per channel, every member gets the messages
in publish order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from asgiws.connection import WebSocketConnection, write_prepared_to_each
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
        elif len(self.connections) > CHUNK:
            # A pass of several iterations anyway: it starts on the next one,
            # so what else is published in this one joins it.
            self._next.append(message)
            self._handle = asyncio.get_running_loop().call_soon(self._next_pass)
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
        if len(batch) == 1:
            message, frames = batch[0]
            written, skipped = write_prepared_to_each(
                members, [message], frames.plain, self._max_queued, frames.compressed
            )
        else:  # several messages: one write (one system call) per member
            messages, joined, joined_compressed = _joined(batch)
            written, skipped = write_prepared_to_each(
                members, messages, joined, self._max_queued, joined_compressed
            )
        count = len(batch)
        dropped = 0
        left: list[WebSocketConnection] | None = None
        for conn, why in skipped or ():
            if why is not _NOT_OPEN:
                dropped += count
                if self._close_slow is None:
                    continue
                self._close_slow(conn)
            (left := left or []).append(conn)
        if left:
            connections = self.connections
            for conn in left:
                connections.pop(conn, None)
        stats = self._stats
        stats.delivered += written * count
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
