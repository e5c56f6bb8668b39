"""Node's `ws` client against the asgiws CLI: the 1,000-message mix echoed
byte-identically (without permessage-deflate, with it, and with the windows
negotiated down to 9/10 bits), a fragmented text message, the close code and
reason both ways, a subprotocol, and a denial response."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgiws.websocket.deflate import (
    DEFAULT_CLIENT_MAX_WINDOW_BITS,
    DEFAULT_SERVER_MAX_WINDOW_BITS,
)
from tests.conftest import REPO_ROOT, StartServer
from tests.integration.interop_messages import check_echo_report, message_mix

NODE_DIR = REPO_ROOT / "tests" / "node"
NODE_CLIENT = NODE_DIR / "interop_client.js"
APP = "tests.apps:protocol"
# A text message sent in frames whose edges fall inside UTF-8 characters.
FRAGMENTS = ["frag", "mént", "s 😀", " end"]
CLOSE = {"code": 4001, "reason": "node done ✓"}

RunNode = Callable[..., dict[str, Any]]


@pytest.fixture
def run_node(require_tool: Callable[[str], str], tmp_path: Path) -> RunNode:
    """`run_node(scenario, url, **plan)`: the report interop_client.js printed."""
    node = require_tool("node")

    def run(scenario: str, url: str, **plan: Any) -> dict[str, Any]:
        plan_file = tmp_path / f"plan-{scenario}.json"
        plan_file.write_text(json.dumps(plan))
        result = subprocess.run(
            [node, str(NODE_CLIENT), scenario, url, str(plan_file)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=NODE_DIR,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        return report

    return run


def last_disconnect(base_url: str) -> dict[str, Any]:
    """The code and reason the app's `websocket.disconnect` carried."""
    response = httpx.get(f"{base_url}/last-disconnect", timeout=10)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


DEFLATE_SETTINGS: dict[str, Any] = {
    "plain": False,
    "deflate": True,
    "deflate-9-10": {"serverMaxWindowBits": 9, "clientMaxWindowBits": 10},
}
EXPECTED_EXTENSIONS = {
    "plain": "",
    # The server's own default windows (ws accepts any client window: the
    # server picks DEFAULT_CLIENT_MAX_WINDOW_BITS).
    "deflate": (
        f"permessage-deflate; server_max_window_bits={DEFAULT_SERVER_MAX_WINDOW_BITS}"
        f"; client_max_window_bits={DEFAULT_CLIENT_MAX_WINDOW_BITS}"
    ),
    "deflate-9-10": "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
}


@pytest.mark.parametrize("deflate", list(DEFLATE_SETTINGS))
def test_node_ws_echoes_the_message_mix(
    run_server: StartServer, run_node: RunNode, deflate: str
) -> None:
    server = run_server(APP)
    mix = message_mix()
    report = run_node(
        "echo",
        f"{server.ws_url}/echo",
        messages=mix.as_json(),
        fragments=FRAGMENTS,
        close=CLOSE,
        perMessageDeflate=DEFLATE_SETTINGS[deflate],
    )
    check_echo_report(report, mix)
    assert report["fragmentedEcho"] == "".join(FRAGMENTS)
    assert report["extensions"] == EXPECTED_EXTENSIONS[deflate]
    # The server answered the close with the client's code (RFC 6455 5.5.1),
    # and the app saw the code and reason the client sent.
    assert report["code"] == CLOSE["code"]
    assert last_disconnect(server.url) == CLOSE


def test_node_ws_gets_the_close_code_and_reason_the_app_chose(
    run_server: StartServer, run_node: RunNode
) -> None:
    server = run_server(APP)
    report = run_node("server-close", f"{server.ws_url}/close/4321")
    assert (report["code"], report["reason"]) == (4321, "by server")


def test_node_ws_subprotocol_and_accept_headers(run_server: StartServer, run_node: RunNode) -> None:
    server = run_server(APP)
    report = run_node("subprotocol", f"{server.ws_url}/subprotocol", protocols=["chat.v2", "v1"])
    assert report["protocol"] == "chat.v2"
    assert report["headers"]["x-chosen-by"] == "app"


def test_node_ws_sees_the_denial_response(run_server: StartServer, run_node: RunNode) -> None:
    server = run_server(APP)
    report = run_node("refuse", f"{server.ws_url}/refuse")
    assert report["status"] == 401
    assert report["body"] == "no entry"
    assert report["headers"]["www-authenticate"] == "x"
