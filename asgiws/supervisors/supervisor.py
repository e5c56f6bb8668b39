"""The supervisor process of `--workers` and `--reload`.

Nothing here polls: the loop waits on the workers' process sentinels and
pipes and on a self-pipe that signal handlers and the file watcher write
to, with a timeout only for the next healthcheck ping or pending reload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import wait
from pathlib import Path
from types import FrameType
from typing import Any

from asgiws.config import Config, ConfigError
from asgiws.listeners import bind_tcp
from asgiws.logs import configure_logging
from asgiws.server import bind_target, log_listening, remove_socket_file
from asgiws.supervisors.reload import ChangeWatcher, display_path
from asgiws.supervisors.sockets import bind_sockets
from asgiws.supervisors.worker import Worker

logger = logging.getLogger("asgiws.error")

HEALTHCHECK_INTERVAL = 1.0
"""Seconds between two pings of one worker."""
STOP_MARGIN = 5.0
"""Seconds a stopping worker gets beyond `--timeout-graceful-shutdown` (for
the lifespan shutdown) before it is killed."""
STARTUP_FAILURE = 3
"""Exit code when a worker failed before serving and said nothing else (uvicorn's)."""

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


class Supervisor:
    """Runs `workers` server processes on sockets bound once (`--reload`: one,
    restarted when a watched file changes)."""

    def __init__(self, config: Config, workers: int) -> None:
        self.config = config
        self.processes_num = workers
        self.workers: list[Worker] = []
        self.retiring: list[Worker] = []
        """Workers asked to stop that are not replaced (SIGTTOU, SIGHUP)."""
        self.sockets: list[socket.socket] = []
        self.metrics_socket: socket.socket | None = None
        self.should_exit = False
        self.exit_code = 0
        self.watcher: ChangeWatcher | None = None
        self.changes: list[Path] = []
        self.restart_at: float | None = None
        self._signals: list[signal.Signals] = []
        self._lock = threading.Lock()  # `changes` comes from the watcher thread
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._own_uds: tuple[int, int] | None = None
        self._metrics_dir: str | None = None

    # --- the process's life ------------------------------------------------------
    def run(self) -> int:
        """Bind, start the workers, supervise until SIGINT/SIGTERM; the exit code."""
        try:
            configure_logging(self.config)
            if self.config.reload:
                self.watcher = ChangeWatcher(self.config, self._files_changed)
        except ConfigError as exc:
            print(f"asgiws: error: {exc}", file=sys.stderr)
            return 2
        kind = "reloader" if self.config.reload else "parent"
        using = " using WatchFiles" if self.config.reload else ""
        logger.info("Started %s process [%d]%s", kind, os.getpid(), using)
        if not self._bind():
            return 1
        previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        try:
            self._use_metrics_dir()
            if self.watcher is not None:
                self.watcher.start()
            for _ in range(self.processes_num):
                self._spawn()
            while not self.should_exit:
                self._wait()
                self._handle_signals()
                self._reap()
                self._healthcheck()
                self._reload_when_due()
            self._stop_all()
        finally:
            if self.watcher is not None:
                self.watcher.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._release()
        logger.info("Stopping %s process [%d]", kind, os.getpid())
        return self.exit_code

    def _bind(self) -> bool:
        config = self.config
        try:
            self.sockets, self._own_uds = bind_sockets(config)
        except OSError as exc:
            logger.error("cannot listen on %s: %s", bind_target(config), exc.strerror or exc)
            return False
        log_listening(self.sockets, config.is_ssl)
        if config.metrics and config.metrics_port is not None:
            from asgiws.metrics import log_served_at, metrics_host

            host = metrics_host(config)
            try:
                # Workers share one metrics listener: any of them answers with the sum.
                [self.metrics_socket] = bind_tcp(host, config.metrics_port, config.backlog)[:1]
            except OSError as exc:
                logger.error("cannot listen on %s:%s: %s", host, config.metrics_port, exc)
                return False
            log_served_at(self.metrics_socket, config)
        return True

    def _use_metrics_dir(self) -> None:
        """Under `--metrics`, the workers write their values to one directory
        (prometheus_client's multiprocess mode): a fresh one unless the user
        named one in $PROMETHEUS_MULTIPROC_DIR."""
        if not self.config.metrics:
            return
        from asgiws.metrics import MULTIPROCESS_ENV

        if not os.environ.get(MULTIPROCESS_ENV):
            self._metrics_dir = tempfile.mkdtemp(prefix="asgiws-metrics-")
            os.environ[MULTIPROCESS_ENV] = self._metrics_dir  # spawned workers inherit it

    def _release(self) -> None:
        for sock in [*self.sockets, *([self.metrics_socket] if self.metrics_socket else [])]:
            sock.close()
        if self.config.uds is not None and self._own_uds is not None:
            remove_socket_file(self.config.uds, self._own_uds)
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # --- waking up -------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"!")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signal.Signals(signum))
        self._wake()

    def _files_changed(self, paths: list[Path]) -> None:
        with self._lock:
            self.changes.extend(p for p in paths if p not in self.changes)
        self._wake()

    def _wait(self) -> None:
        """Until a worker ends or writes, a signal, a change, or the next ping is due."""
        timeout = HEALTHCHECK_INTERVAL
        if self.restart_at is not None:
            timeout = max(0.0, min(timeout, self.restart_at - time.monotonic()))
        watched: list[Any] = [self._wake_r]
        for worker in self.workers:
            watched += [worker.process.sentinel, worker.conn]
        watched += [worker.process.sentinel for worker in self.retiring]
        ready = wait(watched, timeout)
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        for worker in self.workers:
            if worker.conn in ready:
                worker.read()

    # --- workers -------------------------------------------------------------------
    def _spawn(self) -> Worker:
        worker = Worker(self.config, self.sockets, self.metrics_socket)
        worker.start()
        self.workers.append(worker)
        return worker

    def _reap(self) -> None:
        """Replace the workers that ended; stop when one could not start."""
        for worker in [w for w in self.retiring if w.exitcode is not None]:
            self.retiring.remove(worker)
            self._forget(worker)
        for worker in [w for w in self.workers if w.exitcode is not None]:
            self.workers.remove(worker)
            worker.read()  # a "started" may sit in the pipe behind the exit
            self._forget(worker)
            if self.should_exit:
                continue
            code = worker.exitcode
            assert code is not None
            if not worker.started and not worker.stopping:
                self._startup_failed(worker, code)
                continue
            if code == 0:
                logger.info("Child process [%d] exited; starting a new one", worker.pid)
            else:
                logger.warning(
                    "Child process [%d] died (%s); starting a new one", worker.pid, how(code)
                )
            self._spawn()

    def _startup_failed(self, worker: Worker, code: int) -> None:
        if self.config.reload:
            logger.error(
                "Child process [%d] failed to start (%s); waiting for a file change",
                worker.pid,
                how(code),
            )
            return
        logger.error(
            "Child process [%d] failed to start (%s); stopping the parent process",
            worker.pid,
            how(code),
        )
        self.exit_code = code if code > 0 else STARTUP_FAILURE
        self.should_exit = True

    def _forget(self, worker: Worker) -> None:
        if self.config.metrics:
            from prometheus_client import multiprocess

            from asgiws.metrics import MULTIPROCESS_ENV

            # Its live gauges leave the sum (a killed worker could not do it itself).
            path = os.environ[MULTIPROCESS_ENV]
            multiprocess.mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
        worker.close()

    def _healthcheck(self) -> None:
        now = time.monotonic()
        limit = self.config.timeout_worker_healthcheck
        for worker in self.workers:
            if worker.exitcode is not None:
                continue
            if worker.ping_sent is None:
                if now - worker.last_pong >= HEALTHCHECK_INTERVAL:
                    worker.ping()
            elif now - worker.ping_sent > limit:
                logger.error(
                    "Child process [%d] did not answer a healthcheck within %g s; killing it",
                    worker.pid,
                    limit,
                )
                worker.kill()

    def _stop(self, workers: list[Worker]) -> None:
        """SIGTERM `workers` and wait for them (bounded), killing the ones that hang."""
        for worker in workers:
            worker.terminate()
        deadline = time.monotonic() + self.config.timeout_graceful_shutdown + STOP_MARGIN
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.exitcode is None:
                logger.error(
                    "Child process [%d] still running after SIGTERM; killing it", worker.pid
                )
                worker.kill()
                worker.process.join()
                self.exit_code = self.exit_code or 1

    def _stop_all(self) -> None:
        workers = self.workers + self.retiring
        for worker in workers:
            logger.info("Waiting for child process [%d]", worker.pid)
        self._stop(workers)
        for worker in workers:
            self._forget(worker)
        self.workers, self.retiring = [], []

    # --- signals -------------------------------------------------------------------
    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in (signal.SIGINT, signal.SIGTERM):
                logger.info("Received %s, exiting.", sig.name)
                self.should_exit = True
            elif sig == signal.SIGHUP:
                logger.info("Received SIGHUP, restarting processes.")
                self._restart_all()
            elif sig == signal.SIGTTIN:
                logger.info("Received SIGTTIN, increasing the number of processes.")
                self.processes_num += 1
                self._spawn()
            elif sig == signal.SIGTTOU:
                logger.info("Received SIGTTOU, decreasing the number of processes.")
                if self.processes_num <= 1:
                    logger.info(
                        "Already reached one process, cannot decrease the number of "
                        "processes anymore."
                    )
                    continue
                self.processes_num -= 1
                worker = self.workers.pop()
                worker.terminate()
                self.retiring.append(worker)

    def _restart_all(self) -> None:
        """Each worker's replacement serves before the worker is retired."""
        for old in list(self.workers):
            new = self._spawn()
            if not self._wait_started(new):
                self.workers.remove(new)
                new.kill()
                self._forget(new)
                logger.error(
                    "New child process was not ready in time; keeping worker [%d] and "
                    "aborting the restart.",
                    old.pid,
                )
                return
            self.workers.remove(old)
            old.terminate()
            self.retiring.append(old)

    def _wait_started(self, worker: Worker) -> bool:
        deadline = time.monotonic() + max(self.config.timeout_worker_healthcheck, 10.0)
        while not worker.started and worker.exitcode is None and not self._signals:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait([worker.conn, worker.process.sentinel], remaining)
            worker.read()
        return worker.started

    # --- reload ------------------------------------------------------------------------
    def _reload_when_due(self) -> None:
        """A change restarts the server `--reload-delay` seconds later; the
        changes seen meanwhile make the same one restart."""
        with self._lock:
            if not self.changes:
                return
            now = time.monotonic()
            if self.restart_at is None:
                self.restart_at = now + self.config.reload_delay
                return
            if now < self.restart_at:
                return
            changes, self.changes, self.restart_at = self.changes, [], None
        logger.warning(
            "WatchFiles detected changes in %s. Reloading...",
            ", ".join(map(display_path, changes)),
        )
        # The old server ends first (its WebSockets get the shutdown close code),
        # so the new one starts its lifespan without it.
        workers, self.workers = self.workers, []
        self._stop(workers)
        for worker in workers:
            self._forget(worker)
        self._spawn()


def how(code: int) -> str:
    """An exit code in words: 'exit code 1', 'signal SIGKILL'."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
