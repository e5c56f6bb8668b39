"""examples/deploy/nginx/asgiws.conf: the real nginx in front of the asgiws CLI.

nginx runs in the foreground with a private prefix; the recipe is included into
a minimal nginx.conf exactly as Debian's /etc/nginx/nginx.conf includes conf.d/,
with only its listen port and upstream address changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, StartServer
from tests.deploy.recipes import (
    DEFAULTS,
    DEPLOY_DIR,
    TEST_APP,
    free_port,
    header,
    render,
    timeout_seconds,
    wait_until_listening,
    whoami,
    ws_echo,
    ws_whoami,
)

RECIPE = DEPLOY_DIR / "nginx" / "asgiws.conf"
# What a client writes into headers only a proxy should set: with the recipe, none
# of it may reach the app as the truth.
FORGED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "Forwarded": "for=198.51.100.9;proto=https",
}

MAIN_CONF = """\
{user}worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/asgiws.conf;
}}
"""


def start_nginx(nginx: str, tmp_path: Path, backend_port: int) -> tuple[ServerProcess, int]:
    port = free_port()
    site = render(RECIPE, {"listen 80;": f"listen 127.0.0.1:{port};",
                           "server 127.0.0.1:8000;": f"server 127.0.0.1:{backend_port};"})
    (tmp_path / "asgiws.conf").write_text(site)
    # As root the master hands its workers to `user` (default nobody), who could not
    # enter the test's private directory: keep them as the user running the test.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(MAIN_CONF.format(user=user, dir=tmp_path))
    nginx_process = ServerProcess.of_program([
        nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr",
        "-g", f"daemon off; pid {tmp_path}/nginx.pid; error_log stderr;",
    ])
    wait_until_listening(port, nginx_process)
    return nginx_process, port


@pytest.fixture
def nginx_in_front(
    require_tool: Callable[[str], str], run_server: StartServer, tmp_path: Path
) -> Iterator[Callable[..., str]]:
    """Factory: asgiws with the given flags behind nginx; returns nginx's host:port."""
    nginx = require_tool("nginx")
    proxies: list[ServerProcess] = []

    def start(*asgiws_args: str) -> str:
        backend = run_server(TEST_APP, *asgiws_args)
        proxy, port = start_nginx(nginx, tmp_path, backend.port)
        proxies.append(proxy)
        return f"127.0.0.1:{port}"

    yield start
    for proxy in proxies:
        assert proxy.stop() == 0, proxy.logs()


async def test_websocket_and_http_through_nginx_see_the_real_client(
    nginx_in_front: Callable[..., str],
) -> None:
    address = nginx_in_front("--forwarded-allow-ips", "127.0.0.1")
    assert await ws_echo(f"ws://{address}", ["hello", b"\x00\xff" * 1000, ""]) == [
        "hello", b"\x00\xff" * 1000, ""]

    scope = whoami(f"http://{address}", FORGED)
    ws, ws_scope = await ws_whoami(f"ws://{address}", FORGED)
    await ws.close()
    for seen, scheme in ((scope, "http"), (ws_scope, "ws")):
        # nginx appended the address it saw (the test's 127.0.0.1); asgiws trusts
        # 127.0.0.1, so the client is the next address to the left, port unknown.
        assert header(seen, "x-forwarded-for") == ["203.0.113.7, 127.0.0.1"]
        assert seen["client"] == ["203.0.113.7", 0]
        # The client's own X-Forwarded-Proto was replaced, its Forwarded dropped.
        assert header(seen, "x-forwarded-proto") == ["http"]
        assert header(seen, "forwarded") == []
        assert seen["scheme"] == scheme
        assert header(seen, "host") == [address]


async def test_an_untrusted_nginx_changes_nothing(
    nginx_in_front: Callable[..., str],
) -> None:
    # The same chain from a proxy asgiws does not trust: the client is nginx itself.
    address = nginx_in_front("--forwarded-allow-ips", "192.0.2.1")
    scope = whoami(f"http://{address}", FORGED)
    ws, ws_scope = await ws_whoami(f"ws://{address}", FORGED)
    await ws.close()
    for seen in (scope, ws_scope):
        assert seen["client"][0] == "127.0.0.1" and seen["client"][1] > 0


def test_read_timeout_outlasts_the_keepalive_ping() -> None:
    # An open WebSocket is silent for at most ping interval + ping timeout (a ping
    # waits that long for its pong before asgiws closes with 1011): nginx must not
    # cut it first.
    assert DEFAULTS.ws_ping_interval is not None and DEFAULTS.ws_ping_timeout is not None
    longest_silence = DEFAULTS.ws_ping_interval + DEFAULTS.ws_ping_timeout
    assert timeout_seconds(RECIPE.read_text(), "proxy_read_timeout") > longest_silence
