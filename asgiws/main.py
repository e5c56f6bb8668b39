"""`asgiws.run(app, **options)`: the programmatic one-liner."""

from __future__ import annotations

from typing import Any

from asgiws.config import Config
from asgiws.server import Server
from asgiws.supervisors import supervisor_for
from asgiws.types import ASGIApp


def run(app: ASGIApp | str, **options: Any) -> int:
    """Serve `app` (an ASGI callable or 'module:attribute') until SIGINT/SIGTERM.

    Takes the same options as `Config` (and the CLI); returns the exit code.
    `Server` sets up logging from the options (`log_config`, `log_level`, ...).
    With `workers` above 1 or `reload`, a supervisor runs the servers in
    worker processes; `app` must then be a 'module:attribute' string.
    Raises ConfigError for options that cannot work.
    """
    config = Config(app=app, **options)
    supervisor = supervisor_for(config)
    if supervisor is not None:
        return supervisor.run()
    return Server(config).run()
