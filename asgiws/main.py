"""`asgiws.run(app, **options)`: the programmatic one-liner."""

from __future__ import annotations

from typing import Any

from asgiws.config import Config
from asgiws.server import Server
from asgiws.types import ASGIApp


def run(app: ASGIApp | str, **options: Any) -> int:
    """Serve `app` (an ASGI callable or 'module:attribute') until SIGINT/SIGTERM.

    Takes the same options as `Config` (and the CLI); returns the exit code.
    `Server` sets up logging from the options (`log_config`, `log_level`, ...).
    """
    return Server(Config(app=app, **options)).run()
