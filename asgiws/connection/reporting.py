"""What one connection tells the server's `Observer`.

A connection only has a `Reporter` when somebody subscribed: without one,
every report site is a single `is not None` test and nothing is counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiws.exceptions import ABNORMAL_CLOSURE
from asgiws.observer import (
    BroadcastSkipped,
    BroadcastSkipReason,
    ClosedBy,
    Observer,
    PingRoundTrip,
    WebSocketClosed,
    WebSocketOpened,
    WritesPaused,
)
from asgiws.websocket.frames import Close

__all__ = ["Reporter", "payload_size"]


OutgoingData = str | bytes | bytearray | memoryview


def payload_size(data: OutgoingData) -> int:
    """Bytes of a message's payload; cheap for ASCII text (`isascii` is O(1))."""
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode())
    return data.nbytes if isinstance(data, memoryview) else len(data)


class Reporter:
    """The observer of one connection, with what `websocket_closed` reports:
    when it opened and the messages and payload bytes each way."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "client",
        "messages_in",
        "messages_out",
        "observer",
        "opened_at",
    )

    def __init__(self, observer: Observer, client: Any = None) -> None:
        self.observer = observer
        # The client as the face saw it (the ASGI scope's, after proxy
        # headers); None: the transport's peer, passed with each report.
        self.client = client
        self.opened_at: float | None = None
        self.messages_in = self.bytes_in = self.messages_out = self.bytes_out = 0

    def received(self, data: str | bytes) -> None:
        self.messages_in += 1
        self.bytes_in += payload_size(data)

    def sent(self, data: OutgoingData, *, ends_message: bool = True) -> None:
        """A message, or a fragment of one, went out."""
        self.messages_out += ends_message
        self.bytes_out += payload_size(data)

    def opened(self, path: str, client: Any, subprotocol: str | None) -> None:
        self.opened_at = asyncio.get_running_loop().time()
        if self.client is None:
            self.client = client
        self.observer.websocket_opened(WebSocketOpened(path, self.client, subprotocol))

    def closed(
        self,
        path: str,
        client: Any,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None,
    ) -> None:
        opened_at = self.opened_at
        if opened_at is None:
            return  # never opened: the handshake's outcome is reported elsewhere
        # The code as the ASGI app sees it in websocket.disconnect.
        close = rcvd if rcvd is not None else sent
        code, reason = (ABNORMAL_CLOSURE, "") if close is None else (close.code, close.reason)
        closed_by = (
            ClosedBy.NOBODY
            if rcvd_then_sent is None
            else ClosedBy.PEER
            if rcvd_then_sent
            else ClosedBy.LOCAL
        )
        self.observer.websocket_closed(
            WebSocketClosed(
                path=path,
                client=self.client,
                code=code,
                reason=reason,
                closed_by=closed_by,
                duration=asyncio.get_running_loop().time() - opened_at,
                messages_in=self.messages_in,
                bytes_in=self.bytes_in,
                messages_out=self.messages_out,
                bytes_out=self.bytes_out,
            )
        )

    def ping_round_trip(self, client: Any, latency: float) -> None:
        self.observer.ping_round_trip(PingRoundTrip(self.client or client, latency))

    def writes_paused(self, client: Any) -> None:
        self.observer.writes_paused(WritesPaused(self.client or client))

    def broadcast_skipped(self, client: Any, reason: BroadcastSkipReason) -> None:
        self.observer.broadcast_skipped(BroadcastSkipped(self.client or client, reason))
