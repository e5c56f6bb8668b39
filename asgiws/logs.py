"""Logging set-up for the CLI and `run()`: the `asgiws` logger tree.

- `asgiws.error`: server life and errors;
- `asgiws.access`: one line per HTTP request / WebSocket handshake;
- `asgiws.websocket`: frames and state changes at DEBUG.
Programs that configure logging themselves call `Server.serve()` directly and
nothing here runs.
"""

from __future__ import annotations

import logging
import sys

TRACE = 5
logging.addLevelName(TRACE, "TRACE")


class LevelPrefixFormatter(logging.Formatter):
    """`INFO:     message`, the layout a uvicorn user already reads."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"{record.levelname}:".ljust(10)
        return prefix + super().format(record)


def configure_logging(level: int, *, access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LevelPrefixFormatter("%(message)s"))
    root = logging.getLogger("asgiws")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    access = logging.getLogger("asgiws.access")
    access.disabled = not access_log
