"""XOR (un)masking of frame payloads (RFC 6455 section 5.3).

The C extension `_speedups` is used when it is importable and
`ASGIWS_NO_EXTENSIONS=1` is not set; `python_apply_mask` is the fallback and
both are exported so tests can compare them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

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


c_apply_mask: Callable[[BytesLike, bytes], bytes] | None = None
if os.environ.get("ASGIWS_NO_EXTENSIONS", "") in ("", "0"):
    try:
        from asgiws.websocket._speedups import apply_mask as _c_apply_mask
    except ImportError:  # not built: the pure Python path is complete on its own
        pass
    else:
        c_apply_mask = _c_apply_mask

apply_mask: Callable[[BytesLike, bytes], bytes] = c_apply_mask or python_apply_mask
