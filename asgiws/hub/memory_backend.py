"""`memory://`: one process, no engine between publishers and subscribers."""

from __future__ import annotations

from collections.abc import Callable

from asgiws.hub.wire import Data

__all__ = ["Deliver", "MemoryBackend"]

Deliver = Callable[[str, Data], None]


class MemoryBackend:
    """A publish reaches the hub's delivery before `publish()` returns
    (members of a channel bigger than one fan-out pass get it over the next
    loop iterations, `fanout.py`); nothing can be down."""

    connected = True

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    def describe(self) -> str:
        return "memory://"

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None

    async def publish(self, channel: str, message: Data) -> None:
        if self._deliver is not None:
            self._deliver(channel, message)

    async def watch(self, channel: str) -> None:
        pass

    async def unwatch(self, channel: str) -> None:
        pass
