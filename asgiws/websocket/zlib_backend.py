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

With zlib-ng, `NATIVE` is the C extension `_zlib_ng` bound to the zlib-ng
inside the package's module: the same compressobj/decompressobj calls and
the same compressed bytes, without the package's Python wrapper around each
call (~5k instructions per compressed echo).  None when that extension is
not built, ASGIWS_NO_EXTENSIONS=1 is set, or the binding is refused (a
zlib-ng other than 2.x): deflate.py then calls the package's module.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from asgiws.websocket.mask import extensions_enabled

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


def bind_native(ng: ModuleType) -> ModuleType | None:
    """Our `_zlib_ng` extension bound to zlib-ng module `ng`'s library, or
    None when it is not built or cannot bind (it says why in ImportError)."""
    try:
        from asgiws.websocket import _zlib_ng
    except ImportError:  # not built: the package's wrapper does the same
        return None
    if ng.__file__ is None:
        return None
    try:
        _zlib_ng.bind(ng.__file__, ng.error)
    except ImportError:  # not the zlib-ng 2.x this extension is built for
        return None
    return _zlib_ng


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

NATIVE = bind_native(zlib) if IS_ZLIB_NG and extensions_enabled() else None
"""zlib-ng's native API (`_zlib_ng`) when deflate.py may call it directly."""
