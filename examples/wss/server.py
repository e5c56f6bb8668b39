#!/usr/bin/env python
"""Hello over TLS (wss://) with a self-signed certificate made at start.

    python examples/wss/server.py [PORT]        # PORT also from $PORT; default 8765

The certificate for `localhost` and 127.0.0.1 is generated with the `openssl`
command into a temporary directory (deleted on exit); the server prints its
path, which examples/wss/client.py needs to trust it.  A real deployment
loads a certificate from a trusted CA instead: see `ssl.SSLContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import asgiws

HOST = "127.0.0.1"


def make_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write localhost.pem (certificate) and localhost.key; return their paths."""
    cert, key = directory / "localhost.pem", directory / "localhost.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "7",
            # An EC key: generated in milliseconds, unlike RSA.
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=localhost",
            # Clients check the name they connect to against subjectAltName, not CN.
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def hello(websocket: asgiws.WebSocketConnection) -> None:
    name = await websocket.recv()
    print(f"<<< {name!s}", flush=True)

    greeting = f"Hello {name!s}!"
    await websocket.send(greeting)
    print(f">>> {greeting}", flush=True)


async def main(port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="asgiws-wss-") as directory:
        cert, key = make_self_signed_certificate(Path(directory))
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(cert, key)

        async with asgiws.serve(hello, HOST, port, ssl=ssl_context) as server:
            bound = server.sockets[0].getsockname()[1]
            print(f"certificate: {cert}", flush=True)
            print(f"listening on wss://localhost:{bound}", flush=True)
            print(f"try: python examples/wss/client.py {bound} {cert}", flush=True)
            await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
