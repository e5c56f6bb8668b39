"""examples/deploy/haproxy/haproxy.cfg: the real HAProxy in front of two asgiws
CLI processes, with only its bind port and the two server addresses changed."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

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

RECIPE = DEPLOY_DIR / "haproxy" / "haproxy.cfg"


async def test_http_and_websocket_reach_both_backends(
    require_tool: Callable[[str], str], run_server: StartServer, tmp_path: Path
) -> None:
    haproxy = require_tool("haproxy")
    backends = [run_server(TEST_APP, "--forwarded-allow-ips", "127.0.0.1") for _ in range(2)]
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(render(RECIPE, {
        "bind :80": f"bind 127.0.0.1:{port}",
        "127.0.0.1:8001": f"127.0.0.1:{backends[0].port}",
        "127.0.0.1:8002": f"127.0.0.1:{backends[1].port}",
    }))
    proxy = ServerProcess.of_program([haproxy, "-db", "-f", str(config)])
    try:
        wait_until_listening(port, proxy)
        base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        pids = {backend.process.pid for backend in backends}

        # Round robin: consecutive requests alternate between the two processes.
        answers = [whoami(base, {"X-Forwarded-Proto": "https"}) for _ in range(4)]
        assert {answer["pid"] for answer in answers} == pids
        for answer in answers:
            # HAProxy named the client (port unknown) and replaced the forged scheme.
            assert answer["client"] == ["127.0.0.1", 0]
            assert header(answer, "x-forwarded-proto") == ["http"]
            assert answer["scheme"] == "http"

        # WebSockets too: two at once land on the two processes and both stay open.
        sockets = [await ws_whoami(ws_base) for _ in range(2)]
        assert {scope["pid"] for _, scope in sockets} == pids
        assert {scope["scheme"] for _, scope in sockets} == {"ws"}
        for ws, _ in sockets:
            await ws.close()
        assert await ws_echo(ws_base, ["through haproxy", b"\x01" * 70_000]) == [
            "through haproxy", b"\x01" * 70_000]
    finally:
        # SIGUSR1 is HAProxy's soft stop (SIGTERM kills it at once): it exits 0
        # once its connections are done.
        code = proxy.stop(signal.SIGUSR1)
    assert code == 0, proxy.logs()
    # Its access log saw the upgrades (101) as well as the requests (200).
    assert " 101 " in proxy.logs() and " 200 " in proxy.logs()


def test_tunnel_timeout_outlasts_the_keepalive_ping() -> None:
    # An upgraded connection is silent for at most ping interval + ping timeout.
    assert DEFAULTS.ws_ping_interval is not None and DEFAULTS.ws_ping_timeout is not None
    longest_silence = DEFAULTS.ws_ping_interval + DEFAULTS.ws_ping_timeout
    assert timeout_seconds(RECIPE.read_text(), "timeout tunnel") > longest_silence
