"""curl against the HTTP routes beside the WebSocket ones on the same port:
GET, HEAD, a chunked POST body, keep-alive reuse, and the denial response
a WebSocket handshake gets from the app."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import StartServer

Curl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def curl(require_tool: Callable[[str], str]) -> Curl:
    """`curl(*args)`: curl's run, failing the test on a curl error."""
    executable = require_tool("curl")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run(
            [executable, "--silent", "--show-error", "--max-time", "10", *args],
            capture_output=True,
            timeout=20,
        )
        # Decoded by hand: text mode would turn the CRLFs of the heads into LFs.
        result = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
        )
        assert result.returncode == 0, result.stderr
        return result

    return run


def status_and_headers(head: str) -> tuple[int, dict[str, str]]:
    lines = head.strip().splitlines()
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}


def test_curl_get_head_and_keep_alive(run_server: StartServer, curl: Curl) -> None:
    server = run_server("tests.apps:protocol")
    got = curl("--include", f"{server.url}/health")
    head, _, body = got.stdout.partition("\r\n\r\n")
    status, headers = status_and_headers(head)
    assert (status, body) == (200, "ok")
    assert headers["content-length"] == "2"
    assert headers["server"] == "asgiws"
    assert "date" in headers

    head_only = curl("--head", f"{server.url}/health")
    status, headers = status_and_headers(head_only.stdout)
    assert (status, headers["content-length"]) == (200, "2")

    # Two requests in one curl run share one connection (HTTP/1.1 keep-alive).
    twice = curl("--verbose", f"{server.url}/a", f"{server.url}/b")
    assert twice.stdout == "okok"
    assert "Re-using existing connection" in twice.stderr


def test_curl_chunked_post_body(run_server: StartServer, curl: Curl, tmp_path: Path) -> None:
    server = run_server("tests.apps:scope_json")
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(1024 * 1024))
    posted = curl(
        "--header",
        "Transfer-Encoding: chunked",
        "--data-binary",
        f"@{body}",
        f"{server.url}/upload?x=1",
    )
    scope = json.loads(posted.stdout)
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/upload", "x=1")
    assert scope["body_length"] == 1024 * 1024


def test_curl_sees_the_websocket_denial_response(run_server: StartServer, curl: Curl) -> None:
    """A WebSocket handshake by hand: the app's denial is an ordinary HTTP response."""
    server = run_server("tests.apps:protocol")
    refused = curl(
        "--include",
        "--http1.1",
        "--header",
        "Connection: Upgrade",
        "--header",
        "Upgrade: websocket",
        "--header",
        "Sec-WebSocket-Version: 13",
        "--header",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        f"{server.url}/refuse",
    )
    head, _, body = refused.stdout.partition("\r\n\r\n")
    status, headers = status_and_headers(head)
    assert (status, body) == (401, "no entry")
    assert headers["www-authenticate"] == "x"
