"""Flow control for one HTTP connection, both directions.

Writing: asyncio calls `pause_writing()` when the transport buffer passes its
high-water mark; `drain()` then waits until `resume_writing()` (or the
connection is lost), so an app's `send()` cannot grow memory without bound.

Reading: the protocol pauses the transport while the app is not consuming
(request body above `BODY_HIGH_WATER`, pipelined requests queued) and resumes
when it catches up.
"""

from __future__ import annotations

import asyncio

BODY_HIGH_WATER = 64 * 1024
"""Unread request body bytes held per connection before reading pauses."""


class FlowControl:
    __slots__ = ("_transport", "_writable", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        # Made only when a writer has to wait: most connections never do,
        # and every WebSocket handshake starts as one of these.
        self._writable: asyncio.Event | None = None
        self.read_paused = False
        self.write_paused = False

    def pause_reading(self) -> None:
        if not self.read_paused and not self._transport.is_closing():
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._writable is not None:
            self._writable.clear()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._writable is not None:
            self._writable.set()

    def connection_lost(self) -> None:
        """Wake every writer: there is nothing left to wait for."""
        self.resume_writing()

    async def drain(self) -> None:
        if self.write_paused:
            if self._writable is None:
                self._writable = asyncio.Event()
            await self._writable.wait()
