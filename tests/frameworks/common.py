"""What every framework app of tests/frameworks shares: the subprotocol
choice, the close command and the record of the client's close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

SUBPROTOCOL = "chat.v2"
FRAMEWORK_HEADER = "x-framework"
DISCONNECT_WAIT = 5.0


def choose_subprotocol(offered: Sequence[str]) -> str | None:
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def close_command(text: str) -> tuple[int, str] | None:
    """`"close 4321 bye now"` -> (4321, "bye now"); None for any other text."""
    words = text.split(" ", 2)
    if len(words) < 2 or words[0] != "close" or not words[1].isdigit():
        return None
    return int(words[1]), words[2] if len(words) == 3 else ""


class DisconnectRecord:
    """The last client close an app saw (code and reason), for GET /last-disconnect."""

    def __init__(self) -> None:
        self.value: dict[str, Any] = {}
        self._seen: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        # Created on first use, inside the server's event loop.
        if self._seen is None:
            self._seen = asyncio.Event()
        return self._seen

    def record(self, code: int, reason: str | None) -> None:
        self.value = {"code": code, "reason": reason or ""}
        self._event().set()

    async def wait(self) -> dict[str, Any]:
        await asyncio.wait_for(self._event().wait(), DISCONNECT_WAIT)
        return self.value
