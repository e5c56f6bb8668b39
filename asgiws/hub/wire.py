"""How a hub message travels through Redis, and which channel names are valid.

Redis carries bytes; a WebSocket message is text or binary, and a
subscriber must get back the kind that was published.  So one tag byte goes
first: ``t`` + the UTF-8 text, or ``b`` + the bytes.  Any program may publish
to a hub channel with that format (``PUBLISH asgiws:room 't{"hello": 1}'``);
a payload with another tag, or a ``t`` payload that is not UTF-8, is dropped
with a warning.
"""

from __future__ import annotations

__all__ = ["MAX_CHANNEL_BYTES", "Data", "check_message", "decode", "encode", "validate_channel"]

Data = str | bytes

TEXT_TAG = b"t"
BINARY_TAG = b"b"
MAX_CHANNEL_BYTES = 256
"""Longest channel name, in UTF-8 bytes (the Redis prefix not counted)."""


def validate_channel(channel: object) -> str:
    """`channel` if it is a valid channel name, else TypeError/ValueError
    saying why: a non-empty str of at most MAX_CHANNEL_BYTES UTF-8 bytes,
    without whitespace or control characters (names end up in logs and in
    Redis commands)."""
    if not isinstance(channel, str):
        raise TypeError(f"a channel name is a str, not {type(channel).__name__}")
    if not channel:
        raise ValueError("a channel name cannot be empty")
    try:
        size = len(channel.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"channel name {channel!r} is not valid Unicode text") from None
    if size > MAX_CHANNEL_BYTES:
        raise ValueError(
            f"channel name too long: {size} bytes in UTF-8, at most {MAX_CHANNEL_BYTES}"
        )
    if not channel.isprintable() or any(c.isspace() for c in channel):
        raise ValueError(f"channel name {channel!r} contains whitespace or control characters")
    return channel


def check_message(message: object) -> Data:
    """The message as published: str stays str (a text frame), any bytes-like
    becomes bytes (a binary frame)."""
    if isinstance(message, str):
        return message
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError(f"cannot publish {type(message).__name__}: expected str or bytes")


def encode(message: Data) -> bytes:
    if isinstance(message, str):
        return TEXT_TAG + message.encode("utf-8")
    return BINARY_TAG + message


def decode(payload: bytes) -> Data:
    """ValueError for a payload that was not published in this format."""
    tag = payload[:1]
    if tag == TEXT_TAG:
        try:
            return payload[1:].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("text message that is not UTF-8") from None
    if tag == BINARY_TAG:
        return payload[1:]
    raise ValueError(f"unknown message tag {tag!r} (expected b't' or b'b')")
