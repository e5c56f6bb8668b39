"""Frames to the transport: replies to a burst held and written together,
and the drain that makes `send()` wait while the peer does not read."""

from __future__ import annotations

import asyncio
from collections.abc import Sized

__all__ = ["CORK_LIMIT", "Burst", "Writer"]

CORK_LIMIT = 64 * 1024
"""Most bytes of frames held back to coalesce replies to a burst; a bigger
write goes out at once (its system call is cheap next to its copy anyway)."""


class Writer:
    """Writes one connection's frames.

    While received messages are still queued for the application, the
    messages it sends are held (at most `CORK_LIMIT` bytes) and go out in one
    `writelines` -- one system call instead of one per message -- as soon as
    the queue runs dry (the last reply, or `recv()` about to wait), or at the
    latest on the next loop iteration.  A lone message is written at once,
    and so is any control frame (with what is held before it).

    `paused` follows the transport's pause_writing/resume_writing: above the
    write limit, `drain()` waits.

    `fd`: the socket a broadcast may write around the transport
    (`shared_write.stream_fd`, -1 when it may not), looked up by the first
    fan-out that reaches the connection with the C accelerator (None until
    then).
    """

    __slots__ = (
        "corked",
        "corked_size",
        "drained",
        "fd",
        "in_burst",
        "loop",
        "paused",
        "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # The transport's loop, set with it (see WebSocketConnection.loop).
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        # Frames held back while a burst of received messages is answered;
        # None when nothing is held.
        self.corked: list[bytes] | None = None
        self.corked_size = 0
        # The held frames start with bytes a `Burst` writes on the next turn:
        # messages sent meanwhile join them rather than going out first.
        self.in_burst = False
        self.paused = False
        # One future for every coroutine waiting in drain(); made on demand.
        self.drained: asyncio.Future[None] | None = None
        self.fd: int | None = None

    def write(self, chunks: list[bytes]) -> None:
        """Write frames now, behind any held by `write_message`."""
        transport = self.transport
        if transport is None:
            raise RuntimeError("the connection has no transport yet")
        corked = self.corked
        if corked is not None:
            corked.extend(chunks)
            self.flush()
        elif len(chunks) == 1:
            transport.write(chunks[0])
        else:
            transport.writelines(chunks)

    def write_message(self, chunks: list[bytes], received: Sized) -> None:
        """Write a message's frames for `send()`; held while `received`
        messages wait for the app, whose replies will follow in this step."""
        corked = self.corked
        if corked is not None:
            corked.extend(chunks)
            self.corked_size += sum(map(len, chunks))
            if self.corked_size >= CORK_LIMIT or not (received or self.in_burst):
                self.flush()  # the last reply of the burst (or enough held)
            return
        if received and len(chunks) == 1 and len(chunks[0]) < CORK_LIMIT:
            if self.transport is None:
                raise RuntimeError("the connection has no transport yet")
            self.corked = [chunks[0]]
            self.corked_size = len(chunks[0])
            # Bounds the delay to one loop iteration.
            self.loop.call_soon(self.flush)
            return
        transport = self.transport
        if transport is not None and len(chunks) == 1:
            transport.write(chunks[0])  # write(), inline: once per message sent
        else:
            self.write(chunks)

    def queued(self) -> int:
        """Outgoing bytes not yet handed to the kernel: the transport's buffer
        plus the frames held back here.  A broadcast's bound on a slow reader
        (`WebSocketConnection.write_prepared(..., max_queued=...)`) reads it."""
        transport = self.transport
        held = self.corked_size if self.corked is not None else 0
        if transport is None:
            return held
        return transport.get_write_buffer_size() + held

    def flush(self) -> None:
        """Write the frames held back by `write_message`, in one call."""
        corked = self.corked
        if corked is None:
            return
        self.corked = None
        self.in_burst = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(corked) == 1:
            transport.write(corked[0])
        else:
            transport.writelines(corked)

    def hold_for_burst(self, data: bytes) -> bool:
        """Hold `data` as the next bytes, for a `Burst` to flush; False (and
        `data` written at once, behind what is held) when already holding."""
        if self.corked is not None:
            self.write([data])
            return False
        self.corked = [data]
        self.corked_size = len(data)
        self.in_burst = True
        return True

    def close_transport(self) -> bool:
        """Flush what is held, then close TCP (asyncio sends what is buffered
        first).  True when this closed it with nothing left to send."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.flush()
            transport.close()
            return transport.get_write_buffer_size() == 0
        return False

    async def drain(self) -> None:
        """Wait until the transport's buffer is below the write limit (or the
        connection is lost)."""
        while self.paused:
            drained = self.drained
            if drained is None:
                drained = self.drained = asyncio.get_running_loop().create_future()
            # Shielded: a cancelled sender must not cancel the others' wait.
            await asyncio.shield(drained)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        drained = self.drained
        if drained is not None:
            self.drained = None
            if not drained.done():
                drained.set_result(None)

    def connection_lost(self) -> None:
        self.corked = None
        self.in_burst = False
        self.resume()  # nothing to wait for any more: drain() returns


class Burst:
    """Bytes held by several connections until the next loop turn, then
    written one connection after another: the opening handshakes' 101
    responses of one loop turn.

    Written at once, each 101 goes out between two handshakes' worth of
    Python, and on loopback (or on a busy client host) every one of them
    wakes a client that went back to sleep after the one before: on the
    handshake benchmark those wake-ups were ~9 % of the server's time.
    Written in a burst, the first wakes the client and the others find it
    running (docs/PERFORMANCE.md, "Ninth pass").

    A held write is the writer's `corked` frames: the messages the app sends
    before the burst join it (one system call), and a control frame, a
    broadcast or the close writes it at once, ahead of itself; a connection
    lost in between drops it.
    """

    __slots__ = ("loop", "writers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writers: list[Writer] = []

    def hold(self, writer: Writer, data: bytes) -> None:
        """`data` as `writer`'s next bytes, written with this turn's burst."""
        if not writer.hold_for_burst(data):
            return
        writers = self.writers
        writers.append(writer)
        if len(writers) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.flush()

