"""Logging set-up from `Config`: the `asgiws` logger tree, as uvicorn sets up its own.

- `asgiws.error`: server life and errors;
- `asgiws.access`: one line per HTTP request / WebSocket handshake;
- `asgiws.websocket`: frames and state changes at DEBUG.

`Server(config)` calls `configure_logging(config)`, so an embedded server logs
like the CLI.  `Config.log_config` chooses how: asgiws's own set-up
(`LOGGING_CONFIG`, the default), a dict for `logging.config.dictConfig`, a
file (`.json`, `.yaml`/`.yml` with PyYAML, anything else `fileConfig`), or
None: the program configures logging itself and nothing here runs.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import logging.config
import sys
from typing import Any

from asgiws.config import Config, ConfigError

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# ANSI colours of the level prefix, as uvicorn shows them.
LEVEL_COLOURS = {
    TRACE: "\x1b[34m",  # blue
    logging.DEBUG: "\x1b[36m",  # cyan
    logging.INFO: "\x1b[32m",  # green
    logging.WARNING: "\x1b[33m",  # yellow
    logging.ERROR: "\x1b[31m",  # red
    logging.CRITICAL: "\x1b[91m",  # bright red
}
RESET = "\x1b[0m"


class LevelPrefixFormatter(logging.Formatter):
    """`INFO:     message`, the layout a uvicorn user already reads.

    `use_colors`: colour the level name; None colours only when stderr (where
    the default handler writes) is a terminal, so files and pipes get plain text."""

    def __init__(
        self,
        fmt: str | None = "%(message)s",
        datefmt: str | None = None,
        use_colors: bool | None = None,
    ) -> None:
        super().__init__(fmt, datefmt)
        self.use_colors = sys.stderr.isatty() if use_colors is None else use_colors

    def format(self, record: logging.LogRecord) -> str:
        name = record.levelname
        padding = " " * max(0, 9 - len(name))
        if self.use_colors:
            name = f"{LEVEL_COLOURS.get(record.levelno, '')}{name}{RESET}"
        return f"{name}:{padding}{super().format(record)}"


LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "asgiws.logs.LevelPrefixFormatter", "fmt": "%(message)s"},
    },
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {"asgiws": {"handlers": ["default"], "level": "INFO", "propagate": False}},
}
"""asgiws's own set-up (`Config.log_config`'s default): every asgiws logger
writes `LEVEL:    message` lines to stderr."""


def default_log_config() -> dict[str, Any]:
    """A fresh copy of `LOGGING_CONFIG` (`Config.log_config`'s default)."""
    return copy.deepcopy(LOGGING_CONFIG)


def configure_logging(config: Config) -> None:
    """Set up the `asgiws` loggers from `config`, as uvicorn does from its Config.

    `log_config` first (skipped when None), then `log_level` on the `asgiws`
    logger and `access_log` on `asgiws.access`.  Raises ConfigError when the
    log configuration cannot be read or applied."""
    if config.log_config is not None:
        try:
            apply_log_config(config.log_config, config.use_colors)
        except ConfigError:
            raise
        except (OSError, ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
            where = config.log_config if isinstance(config.log_config, str) else "(a dict)"
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"--log-config {where}: cannot configure logging: {reason}") from exc
    logging.getLogger("asgiws").setLevel(config.log_level_number)
    logging.getLogger("asgiws.access").disabled = not config.access_log


def apply_log_config(log_config: dict[str, Any] | str, use_colors: bool | None) -> None:
    if isinstance(log_config, dict):
        log_config = copy.deepcopy(log_config)
        if use_colors is not None:
            for formatter in log_config.get("formatters", {}).values():
                if formatter.get("()") == "asgiws.logs.LevelPrefixFormatter":
                    formatter["use_colors"] = use_colors
        logging.config.dictConfig(log_config)
    elif log_config.endswith(".json"):
        with open(log_config, encoding="utf-8") as file:
            logging.config.dictConfig(json.load(file))
    elif log_config.endswith((".yaml", ".yml")):
        try:
            yaml = importlib.import_module("yaml")  # optional: PyYAML
        except ImportError:
            raise ConfigError(
                f"--log-config {log_config}: YAML needs PyYAML (pip install pyyaml)"
            ) from None
        with open(log_config, encoding="utf-8") as file:
            logging.config.dictConfig(yaml.safe_load(file))
    else:
        with open(log_config, encoding="utf-8") as file:  # names a missing file
            logging.config.fileConfig(file, disable_existing_loggers=False)
