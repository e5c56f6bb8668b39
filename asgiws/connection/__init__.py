"""The asyncio WebSocket connection: one object owns the transport, the
sans-I/O engine, flow control in both directions and the timers; its parts
are in this package (see `core`)."""

from asgiws.connection.core import ConnectionLogger, WebSocketConnection, write_prepared_to_each
from asgiws.connection.inbox import Data
from asgiws.connection.options import ConnectionOptions

__all__ = [
    "ConnectionLogger",
    "ConnectionOptions",
    "Data",
    "WebSocketConnection",
    "write_prepared_to_each",
]
