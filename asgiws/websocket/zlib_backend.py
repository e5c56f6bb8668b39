"""The zlib that permessage-deflate runs on, picked once at import.

zlib-ng's drop-in module (`zlib_ng.zlib_ng`, from the `zlib-ng` package that
the `standard` extra installs) when it is importable and `ASGIWS_ZLIB=stdlib`
is not set; the standard library's `zlib` otherwise.  Both give the calls
`deflate.py` makes -- `compressobj(level, DEFLATED, wbits, memLevel)`,
`decompressobj(wbits=)`, bounded `decompress(data, max_length)`, `eof`, the
flush constants -- with the same meaning, raw 8-bit windows included (both
refuse a raw deflater with wbits=8 and accept a raw inflater with 8, and both
keep match distances within w_size - 262).  What differs:

- `zlib_ng.zlib_ng.error` is its own class, not `zlib.error`: catch the
  `error` of the module in use (`zlib.error` of this module's `zlib`).
- zlib-ng compresses to other bytes than zlib (its level 1-6 strategies
  differ), so only the same backend reproduces a compressed message.
- Speed and memory: zlib-ng deflates the 1 KiB benchmark message with
  context takeover in about half zlib's CPU time, but its compressor keeps
  a 128 KiB hash table whatever memLevel (zlib's is 2**(memLevel + 8)
  bytes), so a connection that has compressed holds ~155 KiB instead of
  ~30 KiB at the defaults, and Z_FULL_FLUSH (our no_context_takeover) clears
  that table every message, which makes it slower than zlib there.
  Inflating costs the same on both.  docs/PERFORMANCE.md has the numbers.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

ENV_VAR = "ASGIWS_ZLIB"
STDLIB = "stdlib"


def zlib_ng_allowed() -> bool:
    """False when ASGIWS_ZLIB=stdlib forces the standard library's zlib."""
    return os.environ.get(ENV_VAR, "") != STDLIB


def import_zlib_ng() -> ModuleType | None:
    """zlib-ng's zlib module, or None when the package is not installed."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return None
    return zlib_ng


def backend_name(module: ModuleType) -> str:
    """The library behind `module` and its version: "zlib-ng 2.3.3", "zlib 1.3"."""
    ng_version = getattr(module, "ZLIBNG_VERSION", None)
    if ng_version is not None:
        return f"zlib-ng {ng_version}"
    return f"zlib {module.ZLIB_RUNTIME_VERSION}"


def _pick() -> ModuleType:
    import zlib as stdlib_zlib

    ng = import_zlib_ng() if zlib_ng_allowed() else None
    return ng or stdlib_zlib


if TYPE_CHECKING:
    import zlib as zlib  # zlib-ng's module has the same API: type it as the stdlib's
else:
    zlib = _pick()

NAME = backend_name(zlib)
"""What permessage-deflate compresses with in this process (for logs)."""

IS_ZLIB_NG = hasattr(zlib, "ZLIBNG_VERSION")
"""True when that is zlib-ng (the server's default window depends on it)."""
