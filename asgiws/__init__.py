"""asgiws: an ASGI server for HTTP/1.1 and WebSocket on one port, with its
own WebSocket engine and the websockets-library API on top of it."""

__version__ = "0.1.0"

from asgiws.asgi.websocket import CONNECTION_EXTENSION
from asgiws.auth import BasicAuthWebSocketServerProtocol, basic_auth_protocol_factory
from asgiws.broadcast import broadcast
from asgiws.client import connect, unix_connect
from asgiws.config import Config
from asgiws.connection import WebSocketConnection
from asgiws.datastructures import Headers
from asgiws.exceptions import (
    AbortHandshake,
    ClientDisconnected,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DuplicateParameter,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidOrigin,
    InvalidParameterName,
    InvalidParameterValue,
    InvalidState,
    InvalidStatus,
    InvalidStatusCode,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    RedirectHandshake,
    SecurityError,
    WebSocketException,
)
from asgiws.handler import WebSocketServer, serve, unix_serve
from asgiws.hub import Hub, HubError, HubUnavailable
from asgiws.main import run
from asgiws.protocol import (
    WebSocketClientProtocol,
    WebSocketCommonProtocol,
    WebSocketServerProtocol,
)
from asgiws.server import Server

__all__ = [
    "CONNECTION_EXTENSION",
    "AbortHandshake",
    "BasicAuthWebSocketServerProtocol",
    "ClientDisconnected",
    "Config",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "Headers",
    "Hub",
    "HubError",
    "HubUnavailable",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidState",
    "InvalidStatus",
    "InvalidStatusCode",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "RedirectHandshake",
    "SecurityError",
    "Server",
    "WebSocketClientProtocol",
    "WebSocketCommonProtocol",
    "WebSocketConnection",
    "WebSocketException",
    "WebSocketServer",
    "WebSocketServerProtocol",
    "__version__",
    "basic_auth_protocol_factory",
    "broadcast",
    "connect",
    "run",
    "serve",
    "unix_connect",
    "unix_serve",
]
