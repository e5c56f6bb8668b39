#!/usr/bin/env python
"""Hello client over TLS, trusting the server's self-signed certificate.

    python examples/wss/client.py PORT CERTIFICATE

CERTIFICATE is the path examples/wss/server.py printed (also from $CERT).
A server whose certificate comes from a CA the system trusts needs no ssl=
argument: certificates are verified by default.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys

import asgiws


async def hello(uri: str, certificate: str) -> None:
    ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Trust this one self-signed certificate; hostname checking stays on.
    ssl_context.load_verify_locations(certificate)

    async with asgiws.connect(uri, ssl=ssl_context) as websocket:
        name = input("What's your name? ")

        await websocket.send(name)
        print(f">>> {name}")

        greeting = await websocket.recv()
        print(f"<<< {greeting!s}")


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    certificate = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("CERT", "")
    if not certificate:
        sys.exit("usage: client.py PORT CERTIFICATE (the path examples/wss/server.py printed)")
    asyncio.run(hello(f"wss://localhost:{port}", certificate))
