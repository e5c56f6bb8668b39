"""The plain ASGI path: a WebSocket the hub cannot write to without awaiting.

Under another ASGI server (or outside a WebSocket route of asgiws), the hub
sends through the app-facing object (`starlette.websockets.WebSocket` or
anything with an ASGI `send(message)` coroutine).  Each such member has an
outbox bounded in bytes and a sender task that exists only while the outbox
holds messages: an idle subscriber costs no task, and a slow one fills its
own outbox without holding up anybody else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from asgiws.hub.wire import Data

__all__ = ["SLOW_CLOSE_CODE", "AsgiMember"]

logger = logging.getLogger("asgiws.hub")

SLOW_CLOSE_CODE = 1013
"""RFC 6455 7.4.1 "Try Again Later": how the `close` policy ends a slow subscriber."""


class AsgiMember:
    """One plain-path WebSocket, in however many channels it joined."""

    __slots__ = (
        "_forget",
        "channels",
        "close_reason",
        "closing",
        "outbox",
        "queued",
        "task",
        "websocket",
    )

    def __init__(self, websocket: Any, forget: Callable[[AsgiMember], None]) -> None:
        self.websocket = websocket
        self.channels: set[str] = set()
        self.outbox: deque[tuple[Data, int]] = deque()
        self.queued = 0  # bytes in the outbox
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.close_reason = ""
        self._forget = forget  # called once the WebSocket is found gone

    @property
    def gone(self) -> bool:
        """Starlette's view of the socket, when there is one."""
        state = getattr(self.websocket, "client_state", None)
        return self.closing or getattr(state, "name", "") == "DISCONNECTED"

    def put(self, message: Data, size: int, max_queued: int) -> bool:
        """Queue `message` unless the outbox already holds more than `max_queued` bytes."""
        if self.closing:
            return False
        if self.queued > max_queued:
            return False
        self.outbox.append((message, size))
        self.queued += size
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._send_all())
        return True

    def close_slow(self, reason: str) -> None:
        """The `close` policy: drop what is queued, close with 1013."""
        if self.closing:
            return
        self.closing = True
        self.outbox.clear()
        self.queued = 0
        self.close_reason = reason
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        websocket, outbox = self.websocket, self.outbox
        try:
            while outbox:
                message, size = outbox.popleft()
                self.queued -= size
                if isinstance(message, str):
                    await websocket.send({"type": "websocket.send", "text": message})
                else:
                    await websocket.send({"type": "websocket.send", "bytes": message})
            if self.closing:
                await websocket.send(
                    {
                        "type": "websocket.close",
                        "code": SLOW_CLOSE_CODE,
                        "reason": self.close_reason,
                    }
                )
        except Exception as exc:  # the client left: not the hub's error
            logger.debug("hub member left while sending: %r", exc)
            self.closing = True
        finally:
            self.task = None
        if self.closing:
            self.outbox.clear()
            self._forget(self)
