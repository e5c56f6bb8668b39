"""Fixtures shared by the whole suite: the real server as a subprocess, and tools.

Integration tests drive the real CLI (`python -m asgiws APP ...`) so that they
exercise what a user runs: argument parsing, app loading, signals, shutdown.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The CLI logs this once the socket listens; PORT is the bound one for --port 0.
READY_LINE = re.compile(
    r"asgiws running on (?P<scheme>https?)://(?P<host>\[[^\]]+\]|[^\s:/]+):(?P<port>\d+)"
)

START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0

# Where each external tool comes from, so a failure says what `make test` would do.
TOOL_SOURCES = {
    "chromium": "apt package chromium",
    "redis-server": "apt package redis-server",
    "node": "apt package nodejs (or the machine's node)",
    "npm": "apt package npm (or the machine's npm)",
    "kosoku": "the dev extra of pyproject.toml (pip)",
    "curl": "apt package curl",
    "nginx": "apt package nginx",
    "haproxy": "apt package haproxy",
    "supervisord": "apt package supervisor",
    "systemd-socket-activate": "apt package systemd",
    "systemd-analyze": "apt package systemd",
}


class ServerProcess:
    """One running `asgiws` CLI process, with its merged stdout/stderr captured."""

    def __init__(
        self,
        app: str,
        args: tuple[str, ...],
        env: Mapping[str, str] | None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        command = [sys.executable, "-m", "asgiws", app, "--host", "127.0.0.1", "--port", "0"]
        self._start([*command, *args], env, pass_fds)

    @classmethod
    def of_program(
        cls,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> ServerProcess:
        """Another program, watched the same way (output, `wait_for_log`, `stop`, and
        `wait_ready` once it runs asgiws, as systemd-socket-activate does): the
        proxies and process managers that tests/deploy starts."""
        process = cls.__new__(cls)
        process._start(list(command), env, pass_fds)
        return process

    def _start(
        self, command: list[str], env: Mapping[str, str] | None, pass_fds: tuple[int, ...]
    ) -> None:
        self.command = command
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
        # A reader thread keeps the pipe drained, so a chatty server never blocks on it.
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        self.scheme = "http"
        self.host = "127.0.0.1"
        self.port = 0
        self.returncode: int | None = None
        self.stopped_by_signal: int | None = None

    # --- output --------------------------------------------------------------
    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def logs(self) -> str:
        """Everything the server printed so far (stderr and stdout)."""
        with self._changed:
            return "\n".join(self._lines)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Block until a printed line matches `pattern` (a regex); fail after `timeout`."""
        return self.wait_for_logs(pattern, 1, timeout)[0]

    def wait_for_logs(
        self, pattern: str, count: int, timeout: float = 20.0
    ) -> list[re.Match[str]]:
        """Block until `count` printed lines match `pattern`; fail after `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        matches: list[re.Match[str]] = []
        seen = 0
        with self._changed:
            while True:
                matches += [m for m in map(regex.search, self._lines[seen:]) if m]
                seen = len(self._lines)
                if len(matches) >= count:
                    return matches[:count]
                remaining = deadline - time.monotonic()
                exited = self.process.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or exited:
                    raise AssertionError(
                        f"{len(matches)} of {count} lines matching {pattern!r} within "
                        f"{timeout}s; output:\n{self._joined_lines()}"
                    )
                self._changed.wait(remaining)

    def _joined_lines(self) -> str:
        return "\n".join(self._lines)

    # --- lifecycle -----------------------------------------------------------
    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        try:
            match = self.wait_for_log(READY_LINE.pattern, timeout)
        except AssertionError:
            self.kill()
            raise AssertionError(
                f"server {' '.join(self.command[2:])!r} did not report 'asgiws running on' "
                f"within {timeout}s (exit code {self.process.poll()}); output:\n{self.logs()}"
            ) from None
        self.scheme = match["scheme"]
        host = match["host"].strip("[]")
        # A wildcard bind is reachable on loopback; tests never leave the machine.
        self.host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        self.port = int(match["port"])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        return scheme + self.url[len(self.scheme) :]

    def send_signal(self, signum: int) -> None:
        self.stopped_by_signal = signum
        self.process.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit on its own; fail (and kill it) after `timeout`."""
        try:
            self.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"server did not exit within {timeout}s; output:\n{self.logs()}"
            ) from None
        self._reader.join(timeout=5)
        return self.returncode

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Ask the server to shut down with `signum` and return its exit code."""
        if self.process.poll() is None:
            self.send_signal(signum)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.returncode = self.process.wait()
        self._reader.join(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def finish(self) -> None:
        """Teardown: SIGTERM if still running; a graceful shutdown must exit 0."""
        if self.process.poll() is not None or self.stopped_by_signal is not None:
            # Exited, or the test already asked it to stop: a second signal would
            # interrupt that shutdown, so only wait for it.
            self.wait()
            return
        code = self.stop()
        assert code == 0, f"server exited with {code} after SIGTERM; output:\n{self.logs()}"


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def run_server() -> Iterator[StartServer]:
    """Factory: `run_server("tests.apps:echo", "--ws-max-size", "10", env={...})`.

    Starts the real CLI on 127.0.0.1 with a free port, waits until it listens
    and returns a ServerProcess (`.port`, `.url`, `.ws_url`, `.logs()`,
    `.stop()`). Usable as a context manager; anything still running at the end
    of the test gets SIGTERM and must exit 0 within STOP_TIMEOUT.
    """
    started: list[ServerProcess] = []

    def start(
        app: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> ServerProcess:
        server = ServerProcess(app, tuple(args), env, pass_fds)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    errors: list[str] = []
    for server in started:
        try:
            server.finish()
        except AssertionError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(autouse=True)
def restore_asgiws_logging() -> Iterator[None]:
    """An in-process `Server(Config(...))` sets up the `asgiws` loggers (as
    uvicorn does); put them back, so that later tests' caplog sees records."""
    loggers = [logging.getLogger(name) for name in ("asgiws", "asgiws.access", "asgiws.error")]
    saved = [(lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    yield
    for lg, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
        lg.disabled = disabled


def find_tool(name: str) -> str:
    """Path of an external tool, or fail the test telling how to install it."""
    # The venv's bin/ first: kosoku lives there and pytest may run without activation.
    candidates = [Path(sys.executable).parent / name, REPO_ROOT / ".venv" / "bin" / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        source = TOOL_SOURCES.get(name, "the set-up steps in the Makefile")
        # Never a skip: a missing tool is a broken set-up, and `make test` installs it.
        pytest.fail(f"{name} is not installed ({source}): run `make test`, which installs it")
    return found


@pytest.fixture
def require_tool() -> Callable[[str], str]:
    """`require_tool("chromium")` returns the tool's path or fails the test."""
    return find_tool


class RedisServer:
    """A real `redis-server` on a free loopback port, no persistence; `kill()`
    and `start()` again on the same port simulate an outage and a restart."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server for one test (required under CI=true, like any tool)."""
    server = RedisServer(find_tool("redis-server"))
    server.start()
    try:
        yield server
    finally:
        server.kill()
