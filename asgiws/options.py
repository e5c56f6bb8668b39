"""The websockets-library spelling of options, for `serve()` and `connect()`.

Users coming from the websockets guide write `max_size=2**20` or
`compression=None`; the server reads `Config.ws_max_size`.  This table maps
the one spelling to the other so that an option is still declared once, in
`Config`; a Config field name is accepted as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asgiws.config import Config, ConfigError

UNLIMITED = 2**62
"""Stands for `None` (no limit) where Config wants a number."""


def _unlimited_if_none(value: Any) -> Any:
    return UNLIMITED if value is None else value


def _compression(value: Any) -> bool:
    if value not in ("deflate", None):
        raise ConfigError(f"compression={value!r}: use 'deflate' or None")
    return bool(value == "deflate")


ALIASES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "compression": ("ws_per_message_deflate", _compression),
    "max_size": ("ws_max_size", _unlimited_if_none),
    "max_queue": ("ws_max_queue", _unlimited_if_none),
    "ping_interval": ("ws_ping_interval", lambda v: v),
    "ping_timeout": ("ws_ping_timeout", lambda v: v),
    "close_timeout": ("ws_close_timeout", lambda v: 0.0 if v is None else v),
    "read_limit": ("ws_read_limit", lambda v: v),
    "write_limit": ("ws_write_limit", lambda v: v),
    "origins": ("ws_origins", lambda v: [] if v is None else list(v)),
    "logger": ("ws_logger", lambda v: v),
    "ssl": ("ssl_context", lambda v: v),
    "open_timeout": ("ws_handshake_timeout", lambda v: v),
}


def config_from_handler_options(**options: Any) -> Config:
    """A Config from websockets-style names (`max_size`) or Config names (`ws_max_size`)."""
    fields = {f.name for f in dataclasses.fields(Config) if f.init}
    values: dict[str, Any] = {}
    for name, value in options.items():
        if name in ALIASES:
            field_name, convert = ALIASES[name]
            values[field_name] = convert(value)
        elif name in fields:
            values[name] = value
        else:
            raise TypeError(f"unexpected option {name!r}")
    return Config(**values)
