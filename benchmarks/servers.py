"""How to start, probe and stop each benchmarked server.

Every ASGI server runs `benchmarks.apps:app`, one worker, access log off,
pinned to CPU 0 with `taskset`; the two non-ASGI peers (websockets, picows)
run `benchmarks/peer_servers.py`, which serves the same WebSocket routes.
Servers that fork a worker (granian, hypercorn) are measured as the whole
process tree: `tree_rss_kib` sums it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
APP = "benchmarks.apps:app"
SERVER_CPU = "0"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One server configuration: a row of the results table."""

    name: str
    package: str  # distribution name, for the version in the machine description
    args: tuple[str, ...]  # after `python -m`; {port} is substituted
    # Extra args that turn permessage-deflate on / off; None: the server cannot.
    deflate_on: tuple[str, ...] | None
    deflate_off: tuple[str, ...] | None
    # The tree the server runs in (cwd and PYTHONPATH): with `python -m` the cwd
    # is sys.path[0], so asgiws and benchmarks.apps are imported from here.
    # run.py --baseline-rev points it at a worktree of an older revision.
    root: Path = REPO
    # False: a WebSocket-only peer; run.py shows "—" for the HTTP rows.
    http: bool = True
    # Environment variables the server runs with (e.g. the pure-Python path).
    env: tuple[tuple[str, str], ...] = ()

    def command(self, port: int, *, deflate: bool = True) -> list[str]:
        """The argv; `deflate` asks for that mode where the server has a switch."""
        extra = (self.deflate_on if deflate else self.deflate_off) or ()
        body = [arg.format(port=port) for arg in self.args]
        return ["taskset", "-c", SERVER_CPU, sys.executable, "-m", *body, *extra]


BASELINE = "uvicorn-fast"

SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec(
        "asgiws-fast",
        "asgiws",
        (
            "asgiws",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--no-access-log",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--ws-ping-interval",
            "0",
        ),
        (),
        ("--no-ws-per-message-deflate",),
    ),
    ServerSpec(
        "asgiws-pure",
        "asgiws",
        (
            "asgiws",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--no-access-log",
            "--http",
            "h11",
            "--loop",
            "asyncio",
            "--ws-ping-interval",
            "0",
        ),
        (),
        ("--no-ws-per-message-deflate",),
        # No C of ours (frame scanner, masking) and the standard zlib: the
        # path every platform gets.
        env=(("ASGIWS_NO_EXTENSIONS", "1"), ("ASGIWS_ZLIB", "stdlib")),
    ),
    ServerSpec(
        BASELINE,
        "uvicorn",
        (
            "uvicorn",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--no-access-log",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--ws",
            "websockets-sansio",
            "--log-level",
            "warning",
        ),
        ("--ws-per-message-deflate", "true"),
        ("--ws-per-message-deflate", "false"),
    ),
    ServerSpec(
        "uvicorn-pure",
        "uvicorn",
        (
            "uvicorn",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--no-access-log",
            "--http",
            "h11",
            "--loop",
            "asyncio",
            "--ws",
            "wsproto",
            "--log-level",
            "warning",
        ),
        ("--ws-per-message-deflate", "true"),
        ("--ws-per-message-deflate", "false"),
    ),
    # hypercorn: no access log unless --access-logfile is given; its wsproto
    # handshake always offers permessage-deflate, there is no switch.
    ServerSpec(
        "hypercorn",
        "hypercorn",
        (
            "hypercorn",
            APP,
            "--bind",
            "127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "uvloop",
            "--log-level",
            "warning",
        ),
        (),
        None,
    ),
    # daphne (autobahn/twisted) does not enable permessage-deflate; no access
    # log unless --access-log is given.
    ServerSpec(
        "daphne",
        "daphne",
        ("daphne", "--bind", "127.0.0.1", "--port", "{port}", "--verbosity", "0", APP),
        None,
        (),
    ),
    ServerSpec(
        "granian",
        "granian",
        (
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            APP,
        ),
        None,
        (),
    ),
    # Non-ASGI peers: the fastest Python WebSocket stacks, as a ceiling.
    ServerSpec(
        "websockets",
        "websockets",
        ("benchmarks.peer_servers", "websockets", "--port", "{port}"),
        (),
        ("--no-deflate",),
        http=False,
    ),
    ServerSpec(
        "picows",
        "picows",
        ("benchmarks.peer_servers", "picows", "--port", "{port}"),
        None,
        (),
        http=False,
    ),
)


def spec_named(name: str) -> ServerSpec:
    for spec in SERVERS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown server {name!r}; known: {', '.join(s.name for s in SERVERS)}")


def raise_nofile_limit() -> None:
    """Lift the soft open-files limit to the hard one (10,000 idle sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """A started server process (group) with its port and log file."""

    def __init__(self, spec: ServerSpec, port: int, log_path: Path, *, deflate: bool = True):
        self.spec = spec
        self.port = port
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        env = dict(os.environ, PYTHONPATH=str(spec.root), PYTHONUNBUFFERED="1")
        env.update(spec.env)
        # A new session: SIGTERM/SIGKILL reach the server and any worker it forks,
        # and nothing else.
        self.process = subprocess.Popen(
            spec.command(port, deflate=deflate),
            cwd=spec.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=raise_nofile_limit,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Poll with a real GET until the app answers 200 (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited: {self.log_tail()}")
            if http_ok(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.spec.name} not ready after {timeout}s: {self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        # Workers a server forked may outlive the parent by a moment.
        signal_group(self.process.pid, signal.SIGKILL)
        self._log.close()

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def http_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = sock.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.1 200")


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants, from /proc/PID/task/*/children."""
    found = [root]
    index = 0
    while index < len(found):
        pid = found[index]
        index += 1
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def tree_status_sum(root: int, field: str) -> int:
    """Sum of a numeric `/proc/PID/status` field (VmRSS, voluntary_ctxt_switches...)
    over a process tree; a process that ended meanwhile counts nothing."""
    total = 0
    prefix = field + ":"
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(prefix):
                total += int(line.split()[1])
                break
    return total


def tree_rss_kib(root: int) -> int:
    """Sum of VmRSS (KiB) over a process tree."""
    return tree_status_sum(root, "VmRSS")
