"""`broadcast(connections, message)`: one message to many connections.

The frame is encoded once for all server-side connections (and compressed
once per shared compression setting for those whose server side negotiated
permessage-deflate with no_context_takeover), written with no await, and
a connection that cannot take it now (slow reader above its write limit,
closing, or in the middle of a fragmented message) is skipped and logged:
one slow client never holds up the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiws.connection import WebSocketConnection, write_prepared_to_each
from asgiws.hub.shared_frames import SharedFrames
from asgiws.observer import BroadcastSkipReason

__all__ = ["broadcast"]

logger = logging.getLogger("asgiws.broadcast")


def broadcast(
    connections: Iterable[WebSocketConnection], message: str | bytes | bytearray | memoryview
) -> int:
    """Send `message` to every open connection; return how many it went to."""
    if isinstance(message, str):
        data: str | bytes = message
    elif isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
    else:
        raise TypeError(f"cannot broadcast {type(message).__name__}: expected str or bytes")
    frames = SharedFrames(data)
    sent, skipped = write_prepared_to_each(
        connections, [data], frames.plain, None, frames.compressed
    )
    for conn, why in skipped or ():
        if why is not BroadcastSkipReason.NOT_OPEN:
            logger.warning("skipped broadcast to connection %s: %s", conn.id, why.value)
    return sent
