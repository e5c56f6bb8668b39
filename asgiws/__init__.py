"""asgiws: an ASGI server for HTTP/1.1 and WebSocket on one port, with its
own WebSocket engine and the websockets-library API on top of it."""

__version__ = "0.1.0"

from asgiws.asgi.websocket import CONNECTION_EXTENSION
from asgiws.broadcast import broadcast
from asgiws.client import (
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidStatusCode,
    connect,
)
from asgiws.config import Config
from asgiws.connection import WebSocketConnection
from asgiws.datastructures import Headers
from asgiws.exceptions import (
    ClientDisconnected,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from asgiws.handler import WebSocketServer, serve
from asgiws.main import run
from asgiws.server import Server
from asgiws.uri import InvalidURI

__all__ = [
    "CONNECTION_EXTENSION",
    "ClientDisconnected",
    "Config",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Headers",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidStatusCode",
    "InvalidURI",
    "Server",
    "WebSocketConnection",
    "WebSocketServer",
    "__version__",
    "broadcast",
    "connect",
    "run",
    "serve",
]
