"""The `asgiws` command as a user runs it: errors, --help, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from asgiws.config import flag_of, options
from tests.conftest import REPO_ROOT, StartServer

CLI_TIMEOUT = 30


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asgiws", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["no_such_module_xyz:app"], "no_such_module_xyz"),
        (["tests.apps:no_such_attribute"], "no_such_attribute"),
        (["tests.apps"], "module:attribute"),
        (["tests.apps:echo", "--port", "not-a-port"], "--port"),
        (["tests.apps:echo", "--port", "70000"], "--port"),
        (["tests.apps:echo", "--loop", "no-such-loop"], "--loop"),
        (["tests.apps:echo", "--ws-max-size", "0"], "--ws-max-size"),
        (["tests.apps:echo", "--no-such-option"], "--no-such-option"),
    ],
)
def test_bad_input_prints_one_clear_line_and_exits_non_zero(args: list[str], mentions: str) -> None:
    result = run_cli(*args, "--host", "127.0.0.1")
    output = (result.stderr + result.stdout).strip()
    assert result.returncode != 0, output
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{output}"
    assert mentions in lines[0]


def test_help_lists_every_option() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for f in options():
        if f.metadata["cli"]:
            assert flag_of(f) in result.stdout, f"{flag_of(f)} missing from --help"


def test_ready_line_reports_the_bound_port(run_server: StartServer) -> None:
    server = run_server("tests.apps:echo")
    assert server.port > 0
    with connect(server.ws_url, open_timeout=10) as ws:
        ws.send("ping?")
        assert ws.recv(timeout=10) == "ping?"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero_and_closes_websockets_as_going_away(
    run_server: StartServer, signum: int
) -> None:
    server = run_server("tests.apps:echo")
    with connect(server.ws_url, open_timeout=10, close_timeout=10) as ws:
        ws.send("before shutdown")
        assert ws.recv(timeout=10) == "before shutdown"
        server.send_signal(signum)
        # The server closes open WebSockets itself, with a code that tells the
        # client to reconnect elsewhere (1012 service restart or 1001 going away).
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
        assert closed.value.rcvd is not None, "server dropped the TCP connection without a close"
        assert closed.value.rcvd.code in (1001, 1012)
    assert server.wait() == 0, server.logs()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--ws-shutdown-close-code", "999"], "--ws-shutdown-close-code: 999 is not 1012 or 1001"),
        (["--ws-ping-interval", "-5"], "--ws-ping-interval: -5.0 is not a number >= 0, or none"),
        (
            ["--ws-shutdown-close-code", "1000"],
            "--ws-shutdown-close-code: 1000 is not 1012 or 1001",
        ),
        (
            ["--malloc-threshold", "99999999999"],
            "--malloc-threshold: 99999999999 is not an integer from 0 to 33554432",
        ),
        (["--limit-concurrency", "0"], "--limit-concurrency: 0 is not an integer >= 1, or none"),
        (["--backlog", "-3"], "--backlog: -3 is not an integer >= 1"),
    ],
)
def test_out_of_range_option_exits_2_at_start_up_with_one_line(
    args: list[str], error: str
) -> None:
    # Refused before the server starts, not when SIGTERM first uses the value.
    result = run_cli("tests.apps:echo", *args, "--port", "0")
    output = (result.stderr + result.stdout).strip()
    assert result.returncode == 2, output
    assert output.splitlines() == [f"asgiws: error: {error} (see 'asgiws --help')"]


def test_access_log_has_http_requests_and_websocket_open_refusal_and_close(
    run_server: StartServer,
) -> None:
    """The access log is an observer the server subscribes: one line per HTTP
    request, per answered handshake and per ended WebSocket."""
    server = run_server("tests.apps:echo")
    with urllib.request.urlopen(server.url + "/health?probe=1", timeout=10) as response:
        assert response.status == 200
    server.wait_for_log(r'127\.0\.0\.1:\d+ - "GET /health\?probe=1 HTTP/1\.1" 200 OK$')
    with connect(server.ws_url + "/chat", open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        server.wait_for_log(r'127\.0\.0\.1:\d+ - "WebSocket /chat" 101')
        ws.close(4001, "bye")
    server.wait_for_log(
        r'"WebSocket /chat" closed 4001 by peer after [\d.]+ s; '
        r"in 1 messages 2 bytes, out 1 messages 2 bytes"
    )


def test_access_log_reports_a_refused_handshake(run_server: StartServer) -> None:
    server = run_server("tests.apps:deny")
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/private", open_timeout=10)
    server.wait_for_log(r'127\.0\.0\.1:\d+ - "WebSocket /private" 403')


def test_no_access_log_option_silences_it(run_server: StartServer) -> None:
    server = run_server("tests.apps:echo", "--no-access-log")
    with urllib.request.urlopen(server.url + "/first", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(server.url + "/second", timeout=10) as response:
        assert response.status == 200
    assert server.stop() == 0
    assert '"GET /first' not in server.logs()


@pytest.mark.parametrize(("choice", "logged"), [("stdlib", r"zlib \d"), (None, r"zlib-ng \d")])
def test_debug_log_names_the_zlib_permessage_deflate_runs_on(
    run_server: StartServer, choice: str | None, logged: str
) -> None:
    """An operator can tell which zlib compresses: zlib-ng (the `standard`
    extra) unless ASGIWS_ZLIB=stdlib picks Python's own."""
    env = {"ASGIWS_ZLIB": choice} if choice else {}
    server = run_server("tests.apps:echo", "--log-level", "debug", env=env)
    server.wait_for_log(rf"permessage-deflate runs on {logged}")
