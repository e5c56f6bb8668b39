"""What the deployment tests share: where the recipes are, how a test turns one
into a config for its own ports and paths, and the clients that ask the app
behind a proxy which process answered."""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from asgiws.cli import config_from_args
from asgiws.config import Config
from tests.conftest import REPO_ROOT, START_TIMEOUT, ServerProcess

DEPLOY_DIR = REPO_ROOT / "examples" / "deploy"
# The app every recipe names, and what the tests serve in its place (the same app
# with /whoami, tests/deploy/deploy_app.py).
EXAMPLE_APP = "examples.starlette_app.app:app"
TEST_APP = "tests.deploy.deploy_app:app"
# asgiws' own defaults, which the recipes' timeouts are set against.
DEFAULTS = Config(app=EXAMPLE_APP)
# How long past --timeout-graceful-shutdown asgiws may still take to exit: it gives
# cancelled app tasks 1 s and its listeners 1 s to close (Server.shutdown).
SHUTDOWN_SLACK = 2.0


def free_port() -> int:
    """A loopback port nothing listens on now, for a program that cannot take port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def render(recipe: Path, replacements: dict[str, str]) -> str:
    """The recipe's text with each example value replaced by the test's own; a value
    the recipe no longer contains fails loudly instead of being tested unreplaced."""
    text = recipe.read_text()
    for old, new in replacements.items():
        assert old in text, f"{recipe.relative_to(REPO_ROOT)} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def asgiws_executable() -> str:
    """The `asgiws` script installed beside the interpreter running the tests."""
    path = Path(sys.executable).parent / "asgiws"
    assert path.is_file(), f"{path} is missing: install asgiws into the venv (make setup)"
    return str(path)


def recipe_config(argv: list[str]) -> Config:
    """The Config an asgiws command line from a recipe makes (argv without 'asgiws'):
    the recipe's flags must be ones the CLI accepts."""
    return config_from_args(argv)


def wait_until_listening(port: int, program: ServerProcess, timeout: float = START_TIMEOUT) -> None:
    """Block until something accepts on 127.0.0.1:port; fail if `program` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if program.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"{program.command[0]} is not listening on port {port} "
                f"(exit code {program.process.poll()}); output:\n{program.logs()}"
            )
        time.sleep(0.05)


def timeout_seconds(text: str, directive: str) -> float:
    """The value of a `directive 60s` line (nginx, HAProxy, supervisor, systemd
    spellings: `60s`, `60`, `=60`, `1m`) in a config file's text."""
    pattern = rf"^\s*{re.escape(directive)}\s*[=\s]\s*(\d+)(ms|s|m|h)?\s*;?"
    match = re.search(pattern, text, re.M)
    assert match, f"no {directive} line"
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match[2]]
    return int(match[1]) * unit


def whoami(base_url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """GET /whoami on a new connection: the scope the app saw, and its process id."""
    with httpx.Client(timeout=5) as client:
        response = client.get(base_url + "/whoami", headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def ws_whoami(
    ws_url: str, headers: dict[str, str] | None = None
) -> tuple[ClientConnection, dict[str, Any]]:
    """An open WebSocket to /whoami and the scope it reported (close it when done)."""
    ws = await connect(ws_url + "/whoami", additional_headers=headers, open_timeout=5)
    result: dict[str, Any] = json.loads(await ws.recv(decode=True))
    return ws, result


async def ws_echo(ws_url: str, messages: list[str | bytes]) -> list[str | bytes]:
    """Send each message to the example app's /ws/echo and collect the replies."""
    async with connect(ws_url + "/ws/echo", open_timeout=5) as ws:
        replies = []
        for message in messages:
            await ws.send(message)
            replies.append(await ws.recv())
    return replies


def header(scope: dict[str, Any], name: str) -> list[str]:
    """Every value of a request header in a scope summary (names are lower case)."""
    return [value for key, value in scope["headers"] if key == name]
