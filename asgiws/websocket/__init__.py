"""The sans-I/O WebSocket engine (RFC 6455, RFC 7692): no asyncio, no sockets,
no clocks.  See docs/INTERNALS.md for how the layers above use it."""

from asgiws.websocket.connection import (
    ClientEngine,
    Engine,
    EngineState,
    OurState,
    ServerEngine,
    TheirState,
    encode_server_frame,
)
from asgiws.websocket.deflate import (
    DeflateOptions,
    DeflateParams,
    client_accept,
    client_offer,
    negotiate,
)
from asgiws.websocket.errors import (
    CloseCode,
    HandshakeError,
    InvalidResponse,
    InvalidState,
    ProtocolError,
)
from asgiws.websocket.events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from asgiws.websocket.frames import Close, Opcode
from asgiws.websocket.handshake import (
    ClientHandshake,
    accept_headers,
    accept_key,
    build_request,
    check_origin,
    generate_key,
    validate_request,
    validate_response,
)

__all__ = [
    "BytesMessage",
    "ClientEngine",
    "ClientHandshake",
    "Close",
    "CloseCode",
    "CloseReceived",
    "ConnectionFailed",
    "DeflateOptions",
    "DeflateParams",
    "Engine",
    "EngineState",
    "Event",
    "HandshakeError",
    "InvalidResponse",
    "InvalidState",
    "Opcode",
    "OurState",
    "Ping",
    "Pong",
    "ProtocolError",
    "ServerEngine",
    "TextMessage",
    "TheirState",
    "accept_headers",
    "accept_key",
    "build_request",
    "check_origin",
    "client_accept",
    "client_offer",
    "encode_server_frame",
    "generate_key",
    "negotiate",
    "validate_request",
    "validate_response",
]
