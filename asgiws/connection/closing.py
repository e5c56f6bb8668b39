"""The closing handshake's timers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Closing"]


class Closing:
    """`timer` drops TCP when the closing handshake takes longer than the
    close timeout; `owed_timer` bounds how long the close frame owed after a
    protocol error waits for the app to read the messages before the error.

    (Which close frame came first is the engine's: `Engine.rcvd_then_sent`.)
    """

    __slots__ = ("owed_timer", "timer")

    def __init__(self) -> None:
        self.timer: asyncio.TimerHandle | None = None
        self.owed_timer: asyncio.TimerHandle | None = None

    def arm(self, timeout: float, timed_out: Callable[[], None]) -> None:
        """Start the close timeout (once)."""
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(timeout, timed_out)

    def defer_owed_close(self, timeout: float, send: Callable[[], None]) -> None:
        self.owed_timer = asyncio.get_running_loop().call_later(timeout, send)

    def owed_close_sent(self) -> None:
        if self.owed_timer is not None:
            self.owed_timer.cancel()
            self.owed_timer = None

    def stop(self) -> None:
        """The connection is lost: no timer may fire any more."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.owed_close_sent()
