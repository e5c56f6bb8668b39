"""examples/deploy/supervisor/asgiws.conf: the real supervisord (foreground) running
two asgiws processes on the one socket it binds, and stopping them gracefully."""

from __future__ import annotations

import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.conftest import REPO_ROOT, START_TIMEOUT, ServerProcess
from tests.deploy.recipes import (
    DEPLOY_DIR,
    EXAMPLE_APP,
    SHUTDOWN_SLACK,
    TEST_APP,
    asgiws_executable,
    free_port,
    recipe_config,
    render,
    timeout_seconds,
    whoami,
    ws_echo,
    ws_whoami,
)

RECIPE = DEPLOY_DIR / "supervisor" / "asgiws.conf"

MAIN_CONF = """\
[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}
loglevel=info

[include]
files={dir}/asgiws.conf
"""


def start_supervisord(supervisord: str, tmp_path: Path, port: int) -> ServerProcess:
    (tmp_path / "asgiws.conf").write_text(render(RECIPE, {
        "tcp://127.0.0.1:8000": f"tcp://127.0.0.1:{port}",
        "/srv/myapp/.venv/bin/asgiws": asgiws_executable(),
        EXAMPLE_APP: TEST_APP,
        "directory=/srv/myapp": f"directory={REPO_ROOT}",
        "/var/log/supervisor/": f"{tmp_path}/",
    }))
    (tmp_path / "supervisord.conf").write_text(MAIN_CONF.format(dir=tmp_path))
    return ServerProcess.of_program([supervisord, "-n", "-c", str(tmp_path / "supervisord.conf")])


async def one_websocket_per_process(
    ws_base: str, pids: set[int]
) -> list[tuple[ClientConnection, dict[str, Any]]]:
    """Open WebSockets until each process holds one (the kernel picks who accepts)."""
    held: dict[int, tuple[ClientConnection, dict[str, Any]]] = {}
    deadline = time.monotonic() + START_TIMEOUT
    while set(held) != pids and time.monotonic() < deadline:
        ws, scope = await ws_whoami(ws_base)
        if scope["pid"] in held:
            await ws.close()
        else:
            held[scope["pid"]] = (ws, scope)
    assert set(held) == pids, f"WebSockets reached only {sorted(held)} of {sorted(pids)}"
    return list(held.values())


async def test_two_processes_serve_one_socket_and_stop_gracefully(
    require_tool: Callable[[str], str], tmp_path: Path
) -> None:
    supervisord = start_supervisord(require_tool("supervisord"), tmp_path, port := free_port())
    try:
        children = {
            int(supervisord.wait_for_log(rf"spawned: 'asgiws_0{n}' with pid (\d+)")[1])
            for n in range(2)
        }
        base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        # Connections wait in the socket's backlog until a process accepts them; keep
        # asking (each time on a new connection) until both processes have answered.
        answered: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT
        while answered != children and time.monotonic() < deadline:
            answered.add(whoami(base)["pid"])
        assert answered == children, f"only {sorted(answered)} of {sorted(children)} answered"
        assert await ws_echo(ws_base, ["one socket", b"\x02" * 3000]) == [
            "one socket", b"\x02" * 3000]

        sockets = await one_websocket_per_process(ws_base, children)
        supervisord.send_signal(signal.SIGTERM)
        for ws, _ in sockets:
            # asgiws' graceful shutdown, not a dropped connection.
            await ws.wait_closed()
            assert ws.close_code == 1012
        code = supervisord.wait()
    finally:
        if supervisord.process.poll() is None:
            supervisord.kill()
    assert code == 0, supervisord.logs()
    for n in range(2):
        assert f"stopped: asgiws_0{n} (exit status 0)" in supervisord.logs()


def test_supervisor_waits_longer_than_the_graceful_shutdown() -> None:
    text = RECIPE.read_text()
    command = next(line for line in text.splitlines() if line.startswith("command="))
    config = recipe_config(shlex.split(command.partition("=")[2])[1:])
    assert config.fd == 0
    assert timeout_seconds(text, "stopwaitsecs") > config.timeout_graceful_shutdown + SHUTDOWN_SLACK
