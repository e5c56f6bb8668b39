"""Options for WebSocket connections, from `Config` or from websockets-style keywords.

Users coming from the websockets guide write `max_size=2**20` or
`compression=None`; the server reads `Config.ws_max_size`.  `ALIASES` maps
the one spelling to the other so that an option is still declared once, in
`Config` (name, type, default, allowed values); a Config field name is
accepted as well.

A connection never sees `Config`: it gets a frozen `ConnectionOptions`.
`connection_options(config)` builds it on the server side (once per server);
`connection_options_from_keywords(...)` builds it for `connect()` straight
from the keywords, checked against the same declarations, without a Config.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from asgiws.config import Config, ConfigError, allowed_text, is_allowed, options
from asgiws.connection.options import ConnectionOptions
from asgiws.websocket.deflate import DeflateOptions

__all__ = [
    "ALIASES",
    "UNLIMITED",
    "config_from_handler_options",
    "connection_options",
    "connection_options_from_keywords",
]

UNLIMITED = 2**62
"""Stands for `None` (no limit) where Config wants a number."""


def _unlimited_if_none(value: Any) -> Any:
    return UNLIMITED if value is None else value


def _same(value: Any) -> Any:
    return value


def _declared_default(name: str) -> Any:
    f = next(f for f in options() if f.name == name)
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[operator]


def _close_timeout(value: Any) -> Any:
    # websockets 10: close_timeout=None means the default (10 s), not "none".
    return _declared_default("ws_close_timeout") if value is None else value


def _logger(value: Any) -> Any:
    # websockets accepts a logger's name as well as a Logger (or adapter).
    return logging.getLogger(value) if isinstance(value, str) else value


def _compression(value: Any) -> bool:
    if value not in ("deflate", None):
        raise ConfigError(f"compression={value!r}: use 'deflate' or None")
    return bool(value == "deflate")


ALIASES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "compression": ("ws_per_message_deflate", _compression),
    "max_size": ("ws_max_size", _unlimited_if_none),
    "max_queue": ("ws_max_queue", _unlimited_if_none),
    "ping_interval": ("ws_ping_interval", _same),
    "ping_timeout": ("ws_ping_timeout", _same),
    "close_timeout": ("ws_close_timeout", _close_timeout),
    "read_limit": ("ws_read_limit", _same),
    "write_limit": ("ws_write_limit", _same),
    "origins": ("ws_origins", lambda v: [] if v is None else list(v)),
    "logger": ("ws_logger", _logger),
    "ssl": ("ssl_context", _same),
    "open_timeout": ("ws_handshake_timeout", _same),
}
"""websockets keyword -> (Config field, conversion of the value)."""


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


def _build(value: Callable[[str], Any], *, closes_at_once: bool = False) -> ConnectionOptions:
    """ConnectionOptions from Config field values (`value("ws_max_size")`);
    `closes_at_once`: a server without TLS (`ConnectionOptions`)."""
    deflate = None
    if value("ws_per_message_deflate"):
        deflate = DeflateOptions(
            level=value("ws_deflate_level"),
            mem_level=value("ws_deflate_mem_level"),
            server_max_window_bits=value("ws_deflate_server_max_window_bits"),
            client_max_window_bits=value("ws_deflate_client_max_window_bits"),
            server_no_context_takeover=value("ws_deflate_server_no_context_takeover"),
            client_no_context_takeover=value("ws_deflate_client_no_context_takeover"),
        )
    max_size = value("ws_max_size")
    return ConnectionOptions(
        max_size=None if max_size >= UNLIMITED else max_size,
        max_queue=value("ws_max_queue"),
        # 0 disables the keepalive (or its timeout) as None does.
        ping_interval=value("ws_ping_interval") or None,
        ping_timeout=value("ws_ping_timeout") or None,
        close_timeout=value("ws_close_timeout"),
        read_limit=value("ws_read_limit"),
        write_limit=value("ws_write_limit"),
        shutdown_close_code=value("ws_shutdown_close_code"),
        logger=value("ws_logger"),
        deflate=deflate,
        closes_at_once=closes_at_once,
    )


def connection_options(config: Config) -> ConnectionOptions:
    """The options of the server-side connections of `config`; the server
    builds them once (`ServerState.ws_options`), not per connection."""
    return _build(lambda name: getattr(config, name), closes_at_once=not config.is_ssl)


def connection_options_from_keywords(**keywords: Any) -> ConnectionOptions:
    """ConnectionOptions from websockets-style names or `ws_*` Config names,
    for a client: no Config is built, but every value is checked against its
    Config declaration (ConfigError, a ValueError, names the bad one) and the
    defaults are Config's.  TypeError for a name that is no WebSocket option."""
    declared = {f.name: f for f in options()}
    values: dict[str, Any] = {}
    for name, value in keywords.items():
        field_name, convert = ALIASES.get(name, (name, _same))
        f = declared.get(field_name) if field_name.startswith("ws_") else None
        if f is None:  # not a WebSocket option (e.g. `port`: a server's)
            raise TypeError(f"unexpected option {name!r}")
        value = convert(value)
        if not is_allowed(f, value):
            raise ConfigError(f"{name}: {value!r} is not {allowed_text(f)}")
        values[field_name] = value

    def value_of(name: str) -> Any:
        return values[name] if name in values else _declared_default(name)

    return _build(value_of)
