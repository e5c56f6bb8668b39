"""Payloads in DEBUG frame lines, truncated."""

from __future__ import annotations

__all__ = ["describe", "hex_dump"]

PAYLOAD_LOG_LIMIT = 75  # characters of payload shown in a DEBUG frame line


def describe(data: str | bytes | bytearray | memoryview) -> str:
    """`TEXT 'hello' [5 bytes]` / `BINARY 00 01 [2 bytes]`."""
    if isinstance(data, str):
        text = repr(data)
        if len(text) > PAYLOAD_LOG_LIMIT:
            text = text[: PAYLOAD_LOG_LIMIT - 6] + "..." + text[-3:]
        return f"TEXT {text} [{len(data.encode())} bytes]"
    return f"BINARY {hex_dump(data)} [{len(data)} bytes]"


def hex_dump(data: bytes | bytearray | memoryview) -> str:
    """Hex dump of a payload, truncated."""
    limit = PAYLOAD_LOG_LIMIT // 3
    if len(data) <= limit:
        return bytes(data).hex(" ")
    return bytes(data[: limit - 2]).hex(" ") + " ..."
