"""Processes: `--workers N` and `--reload`, run by a supervisor process.

The supervisor binds the listening socket(s) once (TCP, `--uds` or `--fd`;
also the `--metrics-port` listener), then runs the servers in worker
processes started with `spawn`, as uvicorn's `Multiprocess` does.  Every
worker accepts from the same socket, so a worker that exits (killed,
recycled by `--limit-max-requests`, restarted by `--reload`) refuses no
connection: the kernel keeps new ones in the backlog for the others.

- `supervisor.Supervisor`: starts, pings (`--timeout-worker-healthcheck`)
  and replaces workers; SIGTERM/SIGINT stop every worker gracefully and the
  supervisor exits 0; SIGHUP restarts the workers, SIGTTIN/SIGTTOU add or
  remove one.  A worker that fails before it serves stops the supervisor
  with the worker's exit code (under `--reload` it waits for the next change).
- `worker`: the two ends of one worker process.
- `reload`: the file watcher of `--reload` (watchfiles).
- `sockets`: the supervisor's listeners.

`supervisor_for(config)` says whether the options need a supervisor.
"""

from __future__ import annotations

import logging
import os
import pickle

from asgiws.config import Config, ConfigError
from asgiws.supervisors.supervisor import Supervisor

__all__ = ["WEB_CONCURRENCY_ENV", "Supervisor", "supervisor_for", "worker_count"]

logger = logging.getLogger("asgiws.error")

WEB_CONCURRENCY_ENV = "WEB_CONCURRENCY"


def worker_count(config: Config) -> int:
    """`--workers`, else `$WEB_CONCURRENCY`, else 1 (uvicorn's rule)."""
    if config.workers is not None:
        return config.workers
    text = os.environ.get(WEB_CONCURRENCY_ENV)
    if text is None:
        return 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"${WEB_CONCURRENCY_ENV}: {text!r} is not an integer >= 1")
    return count


def supervisor_for(config: Config) -> Supervisor | None:
    """The supervisor the options ask for (`--reload`, or more than one
    worker), None for a single server process.  Raises ConfigError when the
    options cannot reach worker processes."""
    workers = worker_count(config)
    reload_options = config.reload_dirs or config.reload_includes or config.reload_excludes
    if reload_options and not config.reload:
        logger.warning(
            "--reload-dir/--reload-include/--reload-exclude do nothing without --reload."
        )
    if not config.reload and workers == 1:
        return None
    if not isinstance(config.app, str):
        raise ConfigError(
            "--workers and --reload need APP as an import string ('module:attribute'): "
            "each worker process imports it"
        )
    if config.ssl_context is not None:
        raise ConfigError(
            "--workers and --reload need --ssl-certfile/--ssl-keyfile, not an ssl_context: "
            "an SSLContext cannot reach another process"
        )
    try:
        pickle.dumps(config)
    except Exception as exc:
        raise ConfigError(
            f"--workers and --reload: an option cannot reach the worker processes ({exc})"
        ) from None
    if config.reload and workers > 1:
        logger.warning('"workers" flag is ignored when reloading is enabled.')
    return Supervisor(config, workers=1 if config.reload else workers)
