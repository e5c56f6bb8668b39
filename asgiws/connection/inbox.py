"""Received messages waiting for `recv()`, and the read pause that bounds them."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Data", "Inbox"]

Data = str | bytes
"""What `recv()` returns: str for a text message, bytes for a binary one."""

IDLE: deque[Data] = deque(maxlen=0)
"""The queue of every inbox that holds no message.  A deque costs 760 bytes
(its first block of 64 slots), which thousands of idle connections would
each carry for nothing: an inbox gets a deque of its own only when a message
must wait in it, and gives it back when `recv()` waits on an empty queue.
Shared and never written to (maxlen=0: an append would be dropped)."""


class Inbox:
    """The message queue of one connection and the one `recv()` that may wait on it.

    Reading from the transport pauses when `max_queue` messages wait (TCP
    then pushes back on the peer) and resumes once the app has drained the
    queue down to a quarter, so that a busy connection does not pause and
    resume on every message.

    `owed_close_after` counts the messages still to deliver before the close
    frame owed after a protocol error may go out (None: no close is owed);
    the queue itself holds messages only.

    A message that arrives while `recv()` waits on an empty queue is handed
    to it as the waiter's result, without being queued: the common case (one
    message at a time) then needs no deque at all (see IDLE).  The waiter's
    result is None when it is only woken (the connection is closing).
    """

    __slots__ = ("max_queue", "messages", "owed_close_after", "paused", "transport", "waiter")

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.messages = IDLE  # a deque of its own once a message must wait
        self.owed_close_after: int | None = None
        self.paused = False
        # Set while the transport can be paused: from connection_made to connection_lost.
        self.transport: asyncio.Transport | None = None
        # The recv() waiting for a message: put() hands it one, wake() None.
        self.waiter: asyncio.Future[Data | None] | None = None

    def put(self, data: Data, closing: bool) -> bool:
        """Queue a message for `recv()`; False when it was dropped."""
        messages = self.messages
        if not messages:
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(data)  # straight to the waiting recv()
                return True
            if messages is IDLE:
                messages = self.messages = deque()
        if closing:
            if len(messages) >= self.max_queue:
                # We are closing and the app is not reading: keep reading to
                # see the peer's close frame, but do not let memory grow meanwhile.
                return False
            messages.append(data)
        else:
            messages.append(data)
            if len(messages) >= self.max_queue:
                # The app is behind: stop reading so TCP pushes back on the peer.
                self.pause_reading()
        waiter = self.waiter  # wake(), inline: this runs for every message
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def take(self) -> Data:
        """The oldest message (the queue must not be empty)."""
        messages = self.messages
        data = messages.popleft()
        if self.owed_close_after is not None:
            self.owed_close_after -= 1
        if self.paused and len(messages) <= self.max_queue // 4:
            self.resume_reading()
        return data

    def undelivered(self) -> int:
        """Messages received that `recv()` has not returned yet: the queue,
        and one handed to a waiter whose task has not run yet."""
        waiter = self.waiter
        handed = (
            waiter is not None
            and waiter.done()
            and not waiter.cancelled()
            and waiter.result() is not None
        )
        return len(self.messages) + handed

    def handed_back(self, waiter: asyncio.Future[Data | None]) -> None:
        """The recv() waiting on `waiter` was cancelled: a message already
        handed to it goes back to the head of the queue, so that no message
        is lost (only the recv() that returns a message takes it)."""
        if waiter.done() and not waiter.cancelled():
            data = waiter.result()
            if data is not None:
                messages = self.messages
                if messages is IDLE:
                    messages = self.messages = deque()
                messages.appendleft(data)

    def delivered(self) -> None:
        """recv() returns a message that was handed to it: the same
        bookkeeping as `take()`."""
        if self.owed_close_after is not None:
            self.owed_close_after -= 1
        if self.paused and len(self.messages) <= self.max_queue // 4:
            self.resume_reading()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_reading(self) -> None:
        transport = self.transport
        if not self.paused and transport is not None:
            self.paused = True
            transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self.transport
        if self.paused and transport is not None:
            self.paused = False
            transport.resume_reading()

    def connection_lost(self) -> None:
        self.transport = None
        self.wake()
