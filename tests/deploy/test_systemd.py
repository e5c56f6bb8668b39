"""examples/deploy/systemd/: the unit files pass `systemd-analyze verify`, and the
service's own command runs under `systemd-socket-activate` on the socket unit's
address (what systemd does on the first connection, without systemd as PID 1)."""

from __future__ import annotations

import configparser
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO_ROOT, ServerProcess
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

SOCKET_UNIT = DEPLOY_DIR / "systemd" / "asgiws.socket"
SERVICE_UNIT = DEPLOY_DIR / "systemd" / "asgiws.service"


def unit_value(text: str, section: str, key: str) -> str:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(text)
    return parser[section][key]


def render_units(tmp_path: Path, port: int) -> tuple[str, str]:
    """Both units for this test's port and this checkout, written into tmp_path."""
    socket_unit = render(SOCKET_UNIT, {"127.0.0.1:8000": f"127.0.0.1:{port}"})
    service_unit = render(SERVICE_UNIT, {
        "/srv/myapp/.venv/bin/asgiws": asgiws_executable(),
        "/srv/myapp": str(REPO_ROOT),
        EXAMPLE_APP: TEST_APP,
    })
    (tmp_path / "asgiws.socket").write_text(socket_unit)
    (tmp_path / "asgiws.service").write_text(service_unit)
    return socket_unit, service_unit


def test_unit_files_verify(require_tool: Callable[[str], str], tmp_path: Path) -> None:
    render_units(tmp_path, free_port())
    result = subprocess.run(
        [require_tool("systemd-analyze"), "verify", "--man=no",
         str(tmp_path / "asgiws.socket"), str(tmp_path / "asgiws.service")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0 and not result.stdout + result.stderr, result


async def test_socket_activation_serves_http_and_websocket(
    require_tool: Callable[[str], str], tmp_path: Path
) -> None:
    activate = require_tool("systemd-socket-activate")
    socket_unit, service_unit = render_units(tmp_path, port := free_port())
    address = unit_value(socket_unit, "Socket", "ListenStream")
    command = shlex.split(unit_value(service_unit, "Service", "ExecStart"))
    process = ServerProcess.of_program([activate, "-l", address, *command])
    try:
        # The descriptor it hands over is the one the service's command names.
        fd = process.wait_for_log(rf"Listening on 127\.0\.0\.1:{port} as (\d+)\.")[1]
        assert f"--fd {fd}" in shlex.join(command)
        # The first connection starts asgiws, which answers it from the backlog.
        scope = whoami(f"http://{address}")
        # asgiws replaced the activator (exec), so SIGTERM reaches it directly.
        assert scope["pid"] == process.process.pid
        process.wait_for_log(rf"asgiws running on http://127\.0\.0\.1:{port}")
        assert await ws_echo(f"ws://{address}", ["activated", b"\x03" * 100]) == [
            "activated", b"\x03" * 100]
        ws, _ = await ws_whoami(f"ws://{address}")
        process.send_signal(signal.SIGTERM)
        await ws.wait_closed()
        assert ws.close_code == 1012
        code = process.wait()
    finally:
        if process.process.poll() is None:
            process.kill()
    assert code == 0, process.logs()


def test_systemd_waits_longer_than_the_graceful_shutdown() -> None:
    text = SERVICE_UNIT.read_text()
    config = recipe_config(shlex.split(unit_value(text, "Service", "ExecStart"))[1:])
    assert config.fd == 3  # SD_LISTEN_FDS_START
    stop_timeout = timeout_seconds(text, "TimeoutStopSec")
    assert stop_timeout > config.timeout_graceful_shutdown + SHUTDOWN_SLACK
