"""Interop with third-party peers in both directions, with and without
permessage-deflate and TLS: Node's `ws` client and the `websockets` client
against asgiws servers (the CLI and `serve()`); asgiws's `connect()` against
the `websockets` server is covered in test_client.py."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect as peer_connect

from asgiws import WebSocketConnection, serve
from tests.conftest import REPO_ROOT, StartServer

NODE_CLIENT = REPO_ROOT / "tests" / "node" / "echo_client.js"


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_node_ws_client_against_the_cli_server(
    run_server: StartServer, require_tool: Callable[[str], str], deflate: bool
) -> None:
    node = require_tool("node")
    server = run_server("tests.apps:protocol")
    result = subprocess.run(
        [node, str(NODE_CLIENT), f"{server.ws_url}/echo", "1" if deflate else "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT / "tests" / "node",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["received"] == [
        {"text": "hello"},
        {"binary": [0, 1, 2, 255]},
        {"text": ""},
        {"text": "abc" * 20000},
    ]
    # The server closes by echoing the client's code (RFC 6455 5.5.1).
    assert report["code"] == 4000
    negotiated = "permessage-deflate" in report["extensions"]
    assert negotiated is deflate


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def tls_contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def echo(websocket: WebSocketConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate"])
async def test_websockets_client_over_tls_against_serve(
    certificate_authority: trustme.CA, compression: str | None
) -> None:
    server_context, client_context = tls_contexts(certificate_authority)
    async with serve(echo, "127.0.0.1", 0, ssl=server_context, compression=compression) as server:
        port = server.sockets[0].getsockname()[1]
        async with peer_connect(f"wss://localhost:{port}/", ssl=client_context) as ws:
            await ws.send("secret" * 1000)
            assert await asyncio.wait_for(ws.recv(), 5) == "secret" * 1000
            assert ws.response is not None
            negotiated = "permessage-deflate" in ws.response.headers.get(
                "Sec-WebSocket-Extensions", ""
            )
            assert negotiated is (compression == "deflate")


async def test_tls_client_without_the_ca_is_refused(certificate_authority: trustme.CA) -> None:
    server_context, _ = tls_contexts(certificate_authority)
    async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError):
            await peer_connect(f"wss://localhost:{port}/")


def test_cli_serves_wss_with_certificate_files(
    run_server: StartServer, certificate_authority: trustme.CA, tmp_path: Any
) -> None:
    cert = certificate_authority.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    server = run_server(
        "tests.apps:protocol",
        "--ssl-keyfile",
        str(tmp_path / "key.pem"),
        "--ssl-certfile",
        str(tmp_path / "cert.pem"),
    )
    assert server.scheme == "https"
    client_context = ssl.create_default_context()
    certificate_authority.configure_trust(client_context)

    async def exchange() -> Any:
        async with peer_connect(f"wss://127.0.0.1:{server.port}/echo", ssl=client_context) as ws:
            await ws.send("over tls")
            return await ws.recv()

    assert asyncio.run(exchange()) == "over tls"
