"""Pings waiting for their pong, and the keepalive timers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

__all__ = ["Keepalive"]


class Keepalive:
    """Our pings in flight (`ping()` and keepalive), by payload.

    The keepalive is two `loop.call_later` handles: `timer` sends the next
    ping, `timeout` gives up on the pong of the one in flight.  Callbacks are
    passed in on each call rather than kept, so that this part holds no
    reference back to its connection.
    """

    __slots__ = ("payload", "pings", "timeout", "timer")

    def __init__(self) -> None:
        # payload -> (the waiter ping() returned, or None for keepalive; sent at)
        self.pings: dict[bytes, tuple[asyncio.Future[float] | None, float]] = {}
        self.payload: bytes | None = None  # the keepalive ping in flight
        self.timer: asyncio.TimerHandle | None = None
        self.timeout: asyncio.TimerHandle | None = None

    def new_payload(self) -> bytes:
        """A payload no ping in flight uses."""
        payload = os.urandom(4)
        while payload in self.pings:
            payload = os.urandom(4)
        return payload

    def sent(self, payload: bytes, waiter: asyncio.Future[float] | None) -> None:
        """A ping went out; `waiter` None marks the keepalive ping."""
        self.pings[payload] = (waiter, asyncio.get_running_loop().time())
        if waiter is None:
            self.payload = payload

    def acknowledge(self, payload: bytes) -> tuple[float | None, float | None]:
        """A pong arrived: (the latency of the ping it answers, or None when
        unsolicited; the keepalive ping's latency when it was answered too)."""
        pings = self.pings
        if payload not in pings:
            return None, None
        now = asyncio.get_running_loop().time()
        matched = keepalive_latency = None
        # A pong acknowledges its ping and every ping sent before it.
        for key, (waiter, sent_at) in list(pings.items()):
            del pings[key]
            latency = now - sent_at
            if waiter is not None and not waiter.done():
                waiter.set_result(latency)
            if key == self.payload:
                self.payload = None
                keepalive_latency = latency
            if key == payload:
                matched = latency
                break
        return matched, keepalive_latency

    def schedule(self, delay: float, ping: Callable[[], None]) -> None:
        self.timer = asyncio.get_running_loop().call_later(delay, ping)

    def await_pong(self, timeout: float, timed_out: Callable[[], None]) -> None:
        self.timeout = asyncio.get_running_loop().call_later(timeout, timed_out)

    def pong_arrived(self) -> bool:
        """Cancel the pong timeout; True when one was running (the caller
        then schedules the next ping)."""
        timeout = self.timeout
        if timeout is None:
            return False
        timeout.cancel()
        self.timeout = None
        return True

    def stop(self, closed: Callable[[], Exception]) -> None:
        """The connection is lost: no more pings; pending `ping()` waiters fail
        with `closed()` (built once, only when one is pending)."""
        for timer in (self.timer, self.timeout):
            if timer is not None:
                timer.cancel()
        self.timer = self.timeout = None
        exc: Exception | None = None
        for waiter, _ in self.pings.values():
            if waiter is not None and not waiter.done():
                exc = exc or closed()
                waiter.set_exception(exc)
                # Nobody may await a ping future after the connection closed;
                # mark the exception retrieved so it is not logged as lost.
                waiter.exception()
        self.pings.clear()
