"""Allocator tuning for the process that runs the server.

Every received WebSocket message is a fresh `bytes` object that the app owns,
so a server echoing 1 MiB messages allocates and frees 1 MiB per message.
With glibc's defaults such a block is either mapped and unmapped with
mmap/munmap each time, or carved from the heap top that is then trimmed back
to the kernel and grown again: either way every page is faulted in afresh,
about 100 µs per MiB here (see docs/PERFORMANCE.md).  Raising the mmap and
trim thresholds keeps blocks up to the threshold in the heap and keeps that
much free heap mapped, so the same pages serve message after message.

Only the process owner should do this: the `asgiws` command and
`asgiws.run()` apply `Config.malloc_threshold`; an app that embeds
`Server.serve()` or `serve()` decides for its own process (`tune_malloc()`).
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

logger = logging.getLogger("asgiws.error")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit)."""


def tune_malloc(threshold: int) -> bool:
    """Keep heap blocks up to `threshold` bytes (at most 32 MiB) off mmap and
    up to that many free bytes mapped.  glibc only; True when applied."""
    if threshold <= 0 or not sys.platform.startswith("linux"):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    value = min(threshold, MAX_MMAP_THRESHOLD)
    applied = bool(mallopt(M_MMAP_THRESHOLD, value)) and bool(mallopt(M_TRIM_THRESHOLD, value))
    logger.debug("malloc thresholds %s at %d bytes", "set" if applied else "not set", value)
    return applied
