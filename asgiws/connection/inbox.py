"""Received messages waiting for `recv()`, and the read pause that bounds them."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Data", "Inbox"]

Data = str | bytes
"""What `recv()` returns: str for a text message, bytes for a binary one."""


class Inbox:
    """The message queue of one connection and the one `recv()` that may wait on it.

    Reading from the transport pauses when `max_queue` messages wait (TCP
    then pushes back on the peer) and resumes once the app has drained the
    queue down to a quarter, so that a busy connection does not pause and
    resume on every message.

    `owed_close_after` counts the messages still to deliver before the close
    frame owed after a protocol error may go out (None: no close is owed);
    the queue itself holds messages only.
    """

    __slots__ = ("max_queue", "messages", "owed_close_after", "paused", "transport", "waiter")

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.messages: deque[Data] = deque()
        self.owed_close_after: int | None = None
        self.paused = False
        # Set while the transport can be paused: from connection_made to connection_lost.
        self.transport: asyncio.Transport | None = None
        # The recv() waiting for a message, woken by put() and wake().
        self.waiter: asyncio.Future[None] | None = None

    def put(self, data: Data, closing: bool) -> bool:
        """Queue a message for `recv()`; False when it was dropped."""
        messages = self.messages
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
