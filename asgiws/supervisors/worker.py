"""One worker process: `Worker` is the supervisor's end, `worker_main` the
process's own.

They talk over one pipe: the supervisor sends "ping", the worker answers
"pong" from a thread (so a busy event loop still answers; a stuck process
does not), and the worker sends "started" once its server listens.  A
worker whose pipe breaks has lost its supervisor and shuts down gracefully,
so a killed supervisor leaves no orphan holding the socket.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from asgiws.config import Config

if TYPE_CHECKING:
    from asgiws.server import Server

SPAWN = multiprocessing.get_context("spawn")

PING = "ping"
PONG = "pong"
STARTED = "started"


class Worker:
    """The supervisor's handle on one worker process."""

    def __init__(
        self, config: Config, sockets: list[socket.socket], metrics_socket: socket.socket | None
    ) -> None:
        self.conn, child_conn = SPAWN.Pipe()
        self._child_conn: Connection | None = child_conn
        self.process = SPAWN.Process(
            target=worker_main,
            args=(config, sockets, metrics_socket, child_conn),
            name="asgiws-worker",
        )
        self.started = False
        """The worker said its server listens."""
        self.ping_sent: float | None = None
        """When the unanswered ping went out."""
        self.last_pong = time.monotonic()
        self.stopping = False
        """The supervisor asked it to stop: its exit is no failure."""

    def start(self) -> None:
        self.process.start()
        # The child holds its own copy now; without ours, its exit closes the pipe.
        assert self._child_conn is not None
        self._child_conn.close()
        self._child_conn = None

    @property
    def pid(self) -> int:
        assert self.process.pid is not None, "start() first"
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def read(self) -> None:
        """Take what the worker sent (call when `conn` is readable)."""
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if message == STARTED:
                    self.started = True
                elif message == PONG:
                    self.ping_sent = None
                    self.last_pong = time.monotonic()
        except (EOFError, OSError):
            pass  # the process ended; its sentinel tells the supervisor

    def ping(self) -> None:
        try:
            self.conn.send(PING)
        except OSError:
            return  # the process ended; its sentinel tells the supervisor
        self.ping_sent = time.monotonic()

    def terminate(self) -> None:
        """Ask for a graceful shutdown (SIGTERM, as a process manager would)."""
        self.stopping = True
        if self.process.exitcode is None:
            os.kill(self.pid, signal.SIGTERM)

    def signal(self, sig: signal.Signals) -> None:
        if self.process.exitcode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        if self.process.exitcode is None:
            self.process.kill()

    def close(self) -> None:
        """After the process ended: reap it and release the pipe."""
        self.process.join()
        self.conn.close()


def worker_main(
    config: Config,
    sockets: list[socket.socket],
    metrics_socket: socket.socket | None,
    conn: Connection,
) -> None:
    """The worker process: one server on the supervisor's sockets."""
    from asgiws.cli import serve

    send_lock = threading.Lock()

    def send(message: str) -> None:
        # OSError: the supervisor is gone; the pong thread stops the server.
        with send_lock, contextlib.suppress(OSError):
            conn.send(message)

    def answer_pings(server: Server) -> None:
        while True:
            try:
                conn.recv()
            except (EOFError, OSError):
                # No supervisor any more (or it closed the pipe after SIGTERM).
                server.should_exit = True
                return
            send(PONG)

    def prepare(server: Server) -> None:
        server.announce_listening = False  # the supervisor logged where it listens
        server.metrics_socket = metrics_socket
        server.on_started = lambda: send(STARTED)
        threading.Thread(target=answer_pings, args=(server,), daemon=True).start()

    try:
        code = serve(config, prepare, sockets)
    except KeyboardInterrupt:  # CTRL+C reached the worker before its handlers
        code = 1
    sys.exit(code)
