"""What a new user meets first, through the real `asgiws` process: `--uds`
that never destroys a file, tracebacks of the user's own code, factory
detection, `--fd` with a TCP socket, and logs a uvicorn user recognizes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import REPO_ROOT, ServerProcess, StartServer
from tests.integration.test_cli import run_cli

CLI_TIMEOUT = 30
UNIX_READY = r"asgiws running on unix socket (?P<path>\S+)"


def write_module(directory: Path, name: str, source: str) -> str:
    """A module of the user's, for `--app-dir directory`."""
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return str(directory)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a UNIX socket path has at most ~107 bytes."""
    with tempfile.TemporaryDirectory(prefix="asgiws-") as name:
        yield Path(name)


def start_on_uds(path: Path) -> ServerProcess:
    server = ServerProcess("tests.apps:echo", ("--uds", str(path)), None)
    server.wait_for_log(UNIX_READY, timeout=15)
    return server


def get_over_uds(path: Path) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=10) as client:
        return client.get("http://asgiws/uds")


# --- 1. --uds ---------------------------------------------------------------------


def test_uds_refuses_to_replace_a_regular_file(short_dir: Path) -> None:
    path = short_dir / "data.txt"
    path.write_text("precious data\n")
    result = run_cli("tests.apps:echo", "--uds", str(path), "--lifespan", "off")
    output = result.stderr + result.stdout
    assert result.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR:    cannot listen on unix socket {path}: "
        "something that is not a socket is there; not replacing it"
    ]
    assert path.read_text() == "precious data\n"


def test_uds_refuses_a_socket_another_process_listens_on(short_dir: Path) -> None:
    path = short_dir / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen()
        result = run_cli("tests.apps:echo", "--uds", str(path), "--lifespan", "off")
        output = result.stderr + result.stdout
        assert result.returncode == 1, output
        assert f"cannot listen on unix socket {path}: another process is listening on it" in output
        # The other server keeps its socket.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))


def test_uds_replaces_a_stale_socket_keeping_its_mode_and_removes_it_on_exit(
    short_dir: Path,
) -> None:
    path = short_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(path))  # closed without unlinking: a stale socket file
    os.chmod(path, 0o640)
    with start_on_uds(path) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        response = get_over_uds(path)
        assert (response.status_code, response.text) == (200, "ok")
        assert server.stop() == 0, server.logs()
    assert not path.exists(), "the server left its socket file behind"


def test_uds_new_socket_is_world_writable_as_with_uvicorn_and_removed_on_exit(
    short_dir: Path,
) -> None:
    path = short_dir / "new.sock"
    with start_on_uds(path) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        assert get_over_uds(path).status_code == 200
        assert server.stop() == 0, server.logs()
    assert not path.exists()


def test_uds_path_that_cannot_be_bound_is_named(short_dir: Path) -> None:
    path = short_dir / "no-such-dir" / "app.sock"
    result = run_cli("tests.apps:echo", "--uds", str(path), "--lifespan", "off")
    output = result.stderr + result.stdout
    assert result.returncode == 1, output
    assert f"ERROR:    cannot listen on unix socket {path}: No such file or directory" in output


# --- 2. the user's traceback --------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ('config = {}\nkey = config["missing_key"]\n', ['key = config["missing_key"]', "KeyError"]),
        ("import no_such_dependency_xyz\n", ["import no_such_dependency_xyz", "ModuleNotFound"]),
        ("def broken(:\n    pass\n", ["def broken(:", "SyntaxError"]),
    ],
)
def test_error_inside_the_app_module_shows_its_traceback(
    tmp_path: Path, source: str, shown: list[str]
) -> None:
    app_dir = write_module(tmp_path, "broken_app", source)
    result = run_cli("broken_app:app", "--app-dir", app_dir)
    output = result.stderr + result.stdout
    assert result.returncode == 1, output
    assert f'File "{tmp_path / "broken_app.py"}", line' in output
    for text in shown:
        assert text in output
    # The user's frames, not the loader's.
    assert "importlib" not in output and "asgiws/server.py" not in output
    assert output.strip().splitlines()[-1].startswith("asgiws: error: loading 'broken_app:app'")


# --- 3. a factory without --factory ---------------------------------------------------

FACTORY_MODULE = """
async def hello(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from the factory"})

def create_app():
    return hello
"""


@pytest.mark.parametrize("flag", [(), ("--factory",)])
def test_a_factory_is_detected_and_used(
    run_server: StartServer, tmp_path: Path, flag: tuple[str, ...]
) -> None:
    app_dir = write_module(tmp_path, "factory_app", FACTORY_MODULE)
    server = run_server("factory_app:create_app", "--app-dir", app_dir, "--lifespan", "off", *flag)
    with urllib.request.urlopen(server.url + "/", timeout=10) as response:
        assert response.read() == b"from the factory"
    warning = "ASGI app factory detected. Using it, but please consider setting the --factory"
    assert (warning in server.logs()) is (not flag)


# --- 5. logs --------------------------------------------------------------------------


def test_started_server_process_line_and_reason_phrase(run_server: StartServer) -> None:
    server = run_server("tests.apps:deny")
    assert f"INFO:     Started server process [{server.process.pid}]" in server.logs()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 404
    server.wait_for_log(r'"GET /health HTTP/1\.1" 404 Not Found$')
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/private", open_timeout=10)
    server.wait_for_log(r'"WebSocket /private" 403 Forbidden$')


def test_application_startup_failure_is_logged_once(tmp_path: Path) -> None:
    app_dir = write_module(
        tmp_path,
        "failing_startup",
        """
        async def app(scope, receive, send):
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})
        """,
    )
    result = run_cli("failing_startup:app", "--app-dir", app_dir, "--port", "0")
    output = result.stderr + result.stdout
    assert result.returncode == 3, output
    assert output.count("Application startup failed") == 1, output
    assert "ERROR:    no database" in output


EMBEDDED = """
import sys
from asgiws import Config, Server
from tests.apps import echo

options = {} if sys.argv[1] == "default" else {"log_config": None}
server = Server(Config(app=echo, port=0, lifespan="off", **options))
server.should_exit = True  # start, log, and stop at once
sys.exit(server.run())
"""


def test_embedded_server_logs_like_uvicorn_unless_log_config_is_none() -> None:
    def run(mode: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", EMBEDDED, mode],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        return result.stderr + result.stdout

    logged = run("default")
    assert re.search(r"^INFO:     Started server process \[\d+\]$", logged, re.M), logged
    assert re.search(r"^INFO:     asgiws running on http://127\.0\.0\.1:\d+ ", logged, re.M)
    assert run("none") == ""


def test_ssl_file_that_fails_to_load_is_named(tmp_path: Path) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("localhost")
    good_cert, good_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(good_cert))
    cert.private_key_pem.write_to_path(str(good_key))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM at all\n")
    for certfile, keyfile, named in [
        (garbage, good_key, f"--ssl-certfile {garbage}: not a PEM certificate"),
        (good_cert, garbage, f"--ssl-keyfile {garbage}: cannot load the private key"),
        (tmp_path / "absent.pem", good_key, f"--ssl-certfile {tmp_path / 'absent.pem'}: cannot"),
    ]:
        result = run_cli(
            "tests.apps:echo", "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)
        )
        output = (result.stderr + result.stdout).strip()
        assert result.returncode == 2, output
        assert len(output.splitlines()) == 1 and named in output, output


def test_log_config_files_json_yaml_ini(run_server: StartServer, tmp_path: Path) -> None:
    as_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mine": {"format": "MINE %(name)s %(levelname)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "mine"}},
        "loggers": {"asgiws": {"handlers": ["out"], "level": "INFO", "propagate": False}},
    }
    json_file = tmp_path / "log.json"
    json_file.write_text(json.dumps(as_dict))
    yaml_file = tmp_path / "log.yaml"
    yaml_file.write_text(json.dumps(as_dict))  # JSON is YAML
    ini_file = tmp_path / "log.ini"
    ini_file.write_text(
        textwrap.dedent(
            """
            [loggers]
            keys=root,asgiws
            [handlers]
            keys=out
            [formatters]
            keys=mine
            [logger_root]
            handlers=
            [logger_asgiws]
            handlers=out
            qualname=asgiws
            propagate=0
            [handler_out]
            class=StreamHandler
            formatter=mine
            args=(sys.stderr,)
            [formatter_mine]
            format=MINE %(name)s %(levelname)s %(message)s
            """
        )
    )
    for path in (json_file, yaml_file, ini_file):
        server = run_server("tests.apps:echo", "--log-config", str(path))
        assert re.search(r"^MINE asgiws\.error INFO asgiws running on", server.logs(), re.M)
        with urllib.request.urlopen(server.url + "/x", timeout=10):
            pass
        server.wait_for_log(r'^MINE asgiws\.access INFO .*"GET /x HTTP/1\.1" 200 OK$')
        assert server.stop() == 0


def test_log_config_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    result = run_cli("tests.apps:echo", "--log-config", str(tmp_path / "missing.json"))
    output = (result.stderr + result.stdout).strip()
    assert result.returncode == 2, output
    assert output.splitlines() == [
        f"asgiws: error: --log-config {tmp_path / 'missing.json'}: cannot configure logging: "
        "No such file or directory"
    ]


@pytest.mark.parametrize(("args", "coloured"), [((), False), (("--use-colors",), True)])
def test_colours_only_when_asked_or_on_a_terminal(
    run_server: StartServer, args: tuple[str, ...], coloured: bool
) -> None:
    # The test reads a pipe, not a terminal: no colour unless --use-colors.
    server = run_server("tests.apps:echo", *args)
    assert ("\x1b[32mINFO\x1b[0m:     asgiws running on" in server.logs()) is coloured
    assert ("\x1b[" in server.logs()) is coloured


# --- 8. --fd ----------------------------------------------------------------------------


def test_fd_with_a_tcp_socket_is_served_and_logged_as_http(run_server: StartServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        fd = listener.fileno()
        server = run_server("tests.apps:echo", "--fd", str(fd), pass_fds=(fd,))
        assert server.port == port, server.logs()
        assert f"asgiws running on http://127.0.0.1:{port}" in server.logs()
        with urllib.request.urlopen(server.url + "/fd", timeout=10) as response:
            assert response.read() == b"ok"
