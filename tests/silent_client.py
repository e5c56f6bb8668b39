"""A raw WebSocket client that completes the handshake and then never answers:
what a dead or stuck peer looks like to the server's keepalive."""

from __future__ import annotations

import base64
import os
import socket
import struct

TIMEOUT = 10.0


def open_silent_client(port: int, path: str = "/") -> tuple[socket.socket, bytes]:
    """A WebSocket client that completes the handshake, then never answers anything;
    returns the socket and the bytes read past the response head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, head.split(b"\r\n\r\n", 1)[1]


def read_frames_until_close(sock: socket.socket, buffer: bytes) -> tuple[list[int], int]:
    """Opcodes of the unmasked server frames read, and the close frame's code."""
    opcodes: list[int] = []

    def take(size: int) -> bytes:
        nonlocal buffer
        while len(buffer) < size:
            chunk = sock.recv(4096)
            assert chunk, f"EOF before a close frame; opcodes so far {opcodes}"
            buffer += chunk
        data, buffer = buffer[:size], buffer[size:]
        return data

    for _ in range(1000):  # bounded: a few pings, then the close
        first, second = take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", take(8))
        payload = take(length)
        opcodes.append(first & 0x0F)
        if first & 0x0F == 0x8:
            (code,) = struct.unpack("!H", payload[:2])
            return opcodes, code
    raise AssertionError(f"no close frame among {len(opcodes)} frames")
