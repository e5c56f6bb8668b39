"""Proxy headers against the real CLI: which peers are trusted
(`--forwarded-allow-ips`: address, CIDR, `*`, $FORWARDED_ALLOW_IPS, a UNIX
socket), what X-Forwarded-For/-Proto and RFC 7239 Forwarded change in the
HTTP and WebSocket scopes, and that the access log names the same client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect, unix_connect

from tests.conftest import ServerProcess, StartServer

APP = "tests.apps:scope_json"
CHAIN = {"x-forwarded-for": "203.0.113.7, 10.1.2.3", "x-forwarded-proto": "https"}


def start_on_uds(path: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """The CLI on a UNIX socket (the fixture waits for a TCP address)."""
    server = ServerProcess(APP, ("--uds", path, *args), env)
    server.wait_for_log(r"asgiws running on unix socket", timeout=15)
    return server


def http_scope(url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = httpx.get(url + "/who", headers=headers, timeout=5)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def ws_scope(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with connect(url + "/who", additional_headers=headers, open_timeout=5) as ws:
        result: dict[str, Any] = json.loads(await ws.recv())
    return result


@pytest.mark.parametrize(
    ("allow", "client", "secure"),
    [
        # Default trust (127.0.0.1): 10.1.2.3 is not trusted, so it is the client.
        (None, ["10.1.2.3", 0], True),
        # A network covers the second proxy: the right-most untrusted hop is the client.
        ("127.0.0.1,10.0.0.0/8", ["203.0.113.7", 0], True),
        # "*" trusts everything: the left-most address.
        ("*", ["203.0.113.7", 0], True),
        # The peer (127.0.0.1) is not trusted: the headers change nothing.
        ("192.0.2.1,10.0.0.0/8", ["127.0.0.1", None], False),
    ],
)
async def test_trust_rules_for_http_and_websocket(
    run_server: StartServer, allow: str | None, client: list[Any], secure: bool
) -> None:
    args = () if allow is None else ("--forwarded-allow-ips", allow)
    server = run_server(APP, *args, env={"FORWARDED_ALLOW_IPS": ""} if allow else None)
    scope = http_scope(server.url, CHAIN)
    ws = await ws_scope(server.ws_url, CHAIN)
    for found in (scope, ws):
        if client[1] is None:  # the transport's own address and port
            assert found["client"][0] == client[0] and found["client"][1] > 0
        else:
            assert found["client"] == client
    assert scope["scheme"] == ("https" if secure else "http")
    assert ws["scheme"] == ("wss" if secure else "ws")


async def test_environment_variable_sets_the_default(run_server: StartServer) -> None:
    server = run_server(APP, env={"FORWARDED_ALLOW_IPS": "192.0.2.1"})
    scope = http_scope(server.url, CHAIN)
    assert scope["client"][0] == "127.0.0.1" and scope["scheme"] == "http"
    # The option wins over the variable.
    server = run_server(APP, "--forwarded-allow-ips", "127.0.0.0/8",
                        env={"FORWARDED_ALLOW_IPS": "192.0.2.1"})
    assert http_scope(server.url, CHAIN)["client"] == ["10.1.2.3", 0]


async def test_no_proxy_headers_ignores_them(run_server: StartServer) -> None:
    server = run_server(APP, "--no-proxy-headers", "--forwarded-allow-ips", "*")
    scope = http_scope(server.url, CHAIN)
    assert scope["client"][0] == "127.0.0.1" and scope["client"][1] > 0
    assert scope["scheme"] == "http"


async def test_rfc7239_forwarded(run_server: StartServer) -> None:
    server = run_server(APP, "--forwarded-allow-ips", "127.0.0.1")
    headers = {"forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https, for=127.0.0.1;proto=http'}
    scope = http_scope(server.url, headers)
    # 127.0.0.1 is a trusted proxy: the client is the hop before it, with its proto.
    assert scope["client"] == ["2001:db8:cafe::17", 0]
    assert scope["scheme"] == "https"
    ws = await ws_scope(server.ws_url, {"forwarded": 'for=198.51.100.9;proto="wss"'})
    assert ws["client"] == ["198.51.100.9", 0] and ws["scheme"] == "wss"
    # X-Forwarded-For comes first, as in uvicorn.
    both = http_scope(server.url, {**headers, "x-forwarded-for": "192.0.2.44"})
    assert both["client"] == ["192.0.2.44", 0] and both["scheme"] == "https"
    # A malformed Forwarded header is ignored as a whole.
    bad = http_scope(server.url, {"forwarded": "for=1.2.3.4;;;=oops"})
    assert bad["client"][0] == "127.0.0.1" and bad["scheme"] == "http"


@pytest.mark.parametrize(("allow", "trusted"), [(None, False), ("unix:", True), ("*", True)])
async def test_unix_socket_peer(tmp_path: Path, allow: str | None, trusted: bool) -> None:
    path = str(tmp_path / "asgiws.sock")
    args = () if allow is None else ("--forwarded-allow-ips", allow)
    with start_on_uds(path, *args) as server:
        await check_unix_peer(path, allow, trusted)
        assert server.stop() == 0


async def check_unix_peer(path: str, allow: str | None, trusted: bool) -> None:
    transport = httpx.HTTPTransport(uds=path)
    with httpx.Client(transport=transport, timeout=5) as client:
        scope = client.get("http://proxy/who", headers=CHAIN).json()
    async with unix_connect(path, "ws://proxy/who", additional_headers=CHAIN) as ws:
        ws_scope_ = json.loads(await ws.recv())
    if trusted:
        expected = ["203.0.113.7", 0] if allow == "*" else ["10.1.2.3", 0]
        assert scope["client"] == expected and scope["scheme"] == "https"
        assert ws_scope_["client"] == expected and ws_scope_["scheme"] == "wss"
    else:
        assert scope["client"] is None and scope["scheme"] == "http"
        assert ws_scope_["client"] is None and ws_scope_["scheme"] == "ws"


def test_unix_socket_path_literal(tmp_path: Path) -> None:
    path = str(tmp_path / "asgiws.sock")
    with start_on_uds(path, "--forwarded-allow-ips", path) as server:
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=5) as client:
            scope = client.get("http://proxy/who", headers=CHAIN).json()
        assert scope["client"] == ["10.1.2.3", 0] and scope["scheme"] == "https"
        assert server.stop() == 0


async def test_access_log_names_the_forwarded_client(run_server: StartServer) -> None:
    server = run_server(APP, "--forwarded-allow-ips", "127.0.0.1")
    http_scope(server.url, {"x-forwarded-for": "198.51.100.23"})
    server.wait_for_log(r'198\.51\.100\.23:0 - "GET /who HTTP/1\.1" 200')
    await ws_scope(server.ws_url, {"x-forwarded-for": "198.51.100.24"})
    server.wait_for_log(r'198\.51\.100\.24:0 - "WebSocket /who" 101')
    server.wait_for_log(r'198\.51\.100\.24:0 - "WebSocket /who" closed')
