"""Build hook for the optional C accelerators (WebSocket: masking, UTF-8
checks, whole-message scanning, permessage-deflate on zlib-ng's native API;
HTTP: whole request heads; connections: a broadcast's shared frame written to
many sockets).

Everything else is declared in pyproject.toml.  The extension is optional: with
no compiler, or with ASGIWS_NO_EXTENSIONS=1 at build time, the install carries
on and the pure-Python fallback is used.
"""

import os
import sys

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("ASGIWS_NO_EXTENSIONS", "") in ("", "0"):
    ext_modules.append(
        Extension(
            "asgiws.websocket._speedups",
            sources=["asgiws/websocket/_speedups.c"],
            optional=True,
        )
    )
    ext_modules.append(
        Extension(
            "asgiws.websocket._zlib_ng",
            sources=["asgiws/websocket/_zlib_ng.c"],
            # dlopen()/dlsym() live in libdl before glibc 2.34
            libraries=["dl"] if sys.platform.startswith("linux") else [],
            optional=True,
        )
    )
    ext_modules.append(
        Extension(
            "asgiws.http._speedups",
            sources=["asgiws/http/_speedups.c"],
            optional=True,
        )
    )
    ext_modules.append(
        Extension(
            "asgiws.connection._speedups",
            sources=["asgiws/connection/_speedups.c"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
