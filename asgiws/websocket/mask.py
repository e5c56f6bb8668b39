"""XOR (un)masking of frame payloads (RFC 6455 section 5.3).

The C extension `_speedups` is used when it is importable and
`ASGIWS_NO_EXTENSIONS=1` is not set; `python_apply_mask` is the fallback and
both are exported so tests can compare them.  The same goes for
`PayloadAssembler`, which unmasks the chunks of one big frame into a single
buffer (`PythonPayloadAssembler` is its fallback).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

BytesLike = bytes | bytearray | memoryview


def python_apply_mask(data: BytesLike, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated.

    One big-integer XOR over the whole buffer: O(n) in C inside CPython,
    instead of a Python-level loop per byte.
    """
    if len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    n = len(data)
    if n == 0:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    value = int.from_bytes(data, "big") ^ int.from_bytes(key, "big")
    return value.to_bytes(n, "big")


def extensions_enabled() -> bool:
    """False when ASGIWS_NO_EXTENSIONS=1 forces the pure-Python paths."""
    return os.environ.get("ASGIWS_NO_EXTENSIONS", "") in ("", "0")


c_apply_mask: Callable[[BytesLike, bytes], bytes] | None = None
if extensions_enabled():
    try:
        from asgiws.websocket._speedups import apply_mask as _c_apply_mask
    except ImportError:  # not built: the pure Python path is complete on its own
        pass
    else:
        c_apply_mask = _c_apply_mask

apply_mask: Callable[[BytesLike, bytes], bytes] = c_apply_mask or python_apply_mask


class PythonPayloadAssembler:
    """Pure-Python twin of the C `PayloadAssembler`: one frame's payload of a
    known `size`, unmasked chunk by chunk into one buffer (`take()` then
    copies it out once, where the C version hands out its buffer itself)."""

    __slots__ = ("_buf", "_filled")

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self._buf = bytearray(size)
        self._filled = 0

    @property
    def filled(self) -> int:
        return self._filled

    def add(self, data: BytesLike, mask: bytes | None) -> None:
        """Append a chunk; `mask` is the frame's key (its phase continues
        where the previous chunk stopped) or None for unmasked data."""
        start = self._filled
        end = start + len(data)
        if end > len(self._buf):
            raise ValueError("more data than the payload size")
        if mask is not None:
            phase = start & 3
            data = python_apply_mask(data, mask[phase:] + mask[:phase])
        self._buf[start:end] = data
        self._filled = end

    def take(self) -> bytes:
        if self._filled != len(self._buf):
            raise ValueError("payload incomplete or already taken")
        return bytes(self._buf)


class Assembler(Protocol):
    """What `PayloadAssembler` (C) and `PythonPayloadAssembler` offer."""

    @property
    def filled(self) -> int: ...

    def add(self, data: BytesLike, mask: bytes | None, /) -> None: ...

    def take(self) -> bytes: ...


PayloadAssembler: Callable[[int], Assembler] = PythonPayloadAssembler
if c_apply_mask is not None:
    try:
        from asgiws.websocket._speedups import PayloadAssembler as _CPayloadAssembler
    except ImportError:  # an older build without it
        pass
    else:
        PayloadAssembler = _CPayloadAssembler
