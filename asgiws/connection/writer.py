"""Frames to the transport: replies to a burst held and written together,
and the drain that makes `send()` wait while the peer does not read."""

from __future__ import annotations

import asyncio
from collections.abc import Sized

__all__ = ["CORK_LIMIT", "Writer"]

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

    __slots__ = ("corked", "corked_size", "drained", "fd", "paused", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # Frames held back while a burst of received messages is answered;
        # None when nothing is held.
        self.corked: list[bytes] | None = None
        self.corked_size = 0
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
            if not received or self.corked_size >= CORK_LIMIT:
                self.flush()  # the last reply of the burst (or enough held)
            return
        if received and len(chunks) == 1 and len(chunks[0]) < CORK_LIMIT:
            if self.transport is None:
                raise RuntimeError("the connection has no transport yet")
            self.corked = [chunks[0]]
            self.corked_size = len(chunks[0])
            # Bounds the delay to one loop iteration.
            asyncio.get_running_loop().call_soon(self.flush)
            return
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
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(corked) == 1:
            transport.write(corked[0])
        else:
            transport.writelines(corked)

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
        self.resume()  # nothing to wait for any more: drain() returns
