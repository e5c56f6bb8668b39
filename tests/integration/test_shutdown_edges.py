"""Shutdown and error edges against the real CLI: a WebSocket handshake the
app has not answered when shutdown starts gets an HTTP 503; an invalid
status from the app gets a 500 instead; TLS client-certificate options."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import StartServer

APP = "tests.integration.ops_apps:app"


async def test_pending_handshake_gets_503_at_shutdown(run_server: StartServer) -> None:
    server = run_server(APP)

    async def handshake() -> int:
        try:
            async with connect(server.ws_url + "/pending", open_timeout=10):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    attempt = asyncio.create_task(handshake())
    await asyncio.to_thread(server.wait_for_log, r"pending handshake")
    server.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(attempt, 10) == 503
    assert await asyncio.to_thread(server.wait) == 0
    assert '"WebSocket /pending" 503' in server.logs()


@pytest.mark.parametrize("status", [700, 99, 600])
def test_invalid_http_status_gets_500(run_server: StartServer, status: int) -> None:
    server = run_server(APP)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.get("/", params={"status": status})
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
        # The server goes on serving.
        assert client.get("/", params={"status": 599}).status_code == 599
    server.wait_for_log(rf"Invalid HTTP status code {status}")


async def test_invalid_websocket_denial_status_gets_500(run_server: StartServer) -> None:
    server = run_server(APP)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url + "/deny-700"):
            pass
    assert refused.value.response.status_code == 500
    assert refused.value.response.body == b"Internal Server Error"


def test_ssl_options_are_checked_at_startup() -> None:
    """--ssl-cert-reqs takes uvicorn's integers; a cipher list OpenSSL
    cannot use is one line, not a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "asgiws", APP, "--ssl-cert-reqs", "3"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "--ssl-cert-reqs: 3 is not one of 0, 1, 2" in result.stderr


def test_ssl_cert_reqs_required_and_ciphers(run_server: StartServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("client@example.test")
    cert, key, ca_file, client_pem = (tmp_path / n for n in ("c.pem", "k.pem", "ca.pem", "cl.pem"))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    tls = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--ssl-ca-certs", str(ca_file))

    bad = subprocess.run(
        [sys.executable, "-m", "asgiws", APP, *tls, "--ssl-ciphers", "NO-SUCH-CIPHER"],
        capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode == 2 and "--ssl-ciphers 'NO-SUCH-CIPHER'" in bad.stderr
    assert "Traceback" not in bad.stderr

    server = run_server(APP, *tls, "--ssl-cert-reqs", "2", "--ssl-ciphers", "ECDHE+AESGCM")
    anonymous = ssl.create_default_context(cafile=str(ca_file))
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/", verify=anonymous, timeout=5).raise_for_status()
    with_cert = ssl.create_default_context(cafile=str(ca_file))
    with_cert.load_cert_chain(str(client_pem))
    assert httpx.get(server.url + "/", verify=with_cert, timeout=5).status_code == 200
    # TLS 1.2 gets only the ciphers asked for.
    tls12 = ssl.create_default_context(cafile=str(ca_file))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    tls12.load_cert_chain(str(client_pem))
    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        with tls12.wrap_socket(raw, server_hostname="127.0.0.1") as secured:
            cipher = secured.cipher()
    assert cipher is not None and "GCM" in cipher[0] and cipher[0].startswith("ECDHE")
