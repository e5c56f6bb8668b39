"""One message's frames for many server connections, each encoded once.

Every server connection can take the uncompressed frame (RFC 7692 lets any
message go uncompressed).  A connection whose side negotiated
no_context_takeover compresses each message from an empty window, so its
compressed bytes depend only on the compressor's settings, its
`shared_compression_key`: those connections get the compressed frame, made
once per distinct key per message, on first demand.
"""

from __future__ import annotations

from asgiws.hub.wire import Data
from asgiws.websocket.connection import encode_compressed_server_frame, encode_server_frame
from asgiws.websocket.deflate import MessageDeflate, SharedCompressionKey, shared_compressor
from asgiws.websocket.frames import Opcode

__all__ = ["Compressors", "SharedFrames"]

Compressors = dict[SharedCompressionKey, MessageDeflate]
"""Shared compressors by key, reused message after message by one event loop
(each message ends with a full flush, so none depends on the one before).
Bounded: the level and memLevel are the server's settings, only the window
bits (9-15) vary with the client's offer."""


class SharedFrames:
    """`plain`: the uncompressed frame; `compressed(key)`: the compressed
    one for that key (what `WebSocketConnection.write_prepared` takes);
    `compressions`: how many keys needed compressing."""

    __slots__ = ("_compressors", "_frames", "_opcode", "_payload", "compressions", "plain")

    def __init__(self, message: Data, compressors: Compressors | None = None) -> None:
        if isinstance(message, str):
            self._opcode, self._payload = Opcode.TEXT, message.encode("utf-8")
        else:
            self._opcode, self._payload = Opcode.BINARY, message
        self.plain = encode_server_frame(self._opcode, self._payload)
        self._compressors: Compressors = {} if compressors is None else compressors
        self._frames: dict[SharedCompressionKey, list[bytes]] = {}
        self.compressions = 0

    def compressed(self, key: SharedCompressionKey) -> list[bytes]:
        frame = self._frames.get(key)
        if frame is None:
            compressor = self._compressors.get(key)
            if compressor is None:
                compressor = self._compressors[key] = shared_compressor(key)
            frame = encode_compressed_server_frame(self._opcode, self._payload, compressor)
            self._frames[key] = frame
            self.compressions += 1
        return frame
