"""The one declaration of every asgiws option.

Each option is a dataclass field whose metadata carries its CLI flag and help
text.  The CLI (`asgiws.cli`), the programmatic API (`Config`, `Server`, `run`)
and the handler API read this table; nothing re-lists options by hand.
Where uvicorn has an option for the same thing, the name, default meaning and
flag are uvicorn's, so a uvicorn user switches by changing one word.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiws.types import ASGIApp

logger = logging.getLogger("asgiws.error")

LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


class ConfigError(ValueError):
    """An option value or the app path is wrong; the message says what to fix."""


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: Sequence[Any] | None = None,
    metavar: str | None = None,
    cli: bool = True,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare one option: default, help, and how the CLI spells it."""
    metadata = {
        "help": help,
        "flag": flag,
        "choices": tuple(choices) if choices is not None else None,
        "metavar": metavar,
        "cli": cli,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Config:
    """Every option of the server, the handler API and the CLI."""

    app: ASGIApp | str | None = option(None, "The ASGI app, or 'module:attribute'.", cli=False)

    # --- sockets -------------------------------------------------------------
    host: str = option("127.0.0.1", "Bind socket to this host.")
    port: int = option(8000, "Bind socket to this port. 0 picks a free port.")
    uds: str | None = option(None, "Bind to a UNIX domain socket.", metavar="PATH")
    fd: int | None = option(None, "Bind to socket from this file descriptor.")
    backlog: int = option(2048, "Maximum number of connections to hold in backlog.")

    # --- application loading -------------------------------------------------
    factory: bool = option(
        False, "Treat APP as an application factory, i.e. a () -> <ASGI app> callable."
    )
    app_dir: str = option(
        ".", "Look for APP in the specified directory, by adding it to the PYTHONPATH."
    )
    root_path: str = option(
        "", "Set the ASGI 'root_path' for applications submounted below a given URL path."
    )
    lifespan: str = option("auto", "Lifespan implementation.", choices=("auto", "on", "off"))

    # --- event loop and HTTP parser -----------------------------------------
    loop: str = option(
        "auto", "Event loop implementation.", choices=("auto", "asyncio", "uvloop")
    )
    http: str = option(
        "auto", "HTTP parser implementation.", choices=("auto", "h11", "httptools")
    )
    h11_max_incomplete_event_size: int = option(
        16 * 1024,
        "Largest request head (request line + headers) in bytes; larger ones get 431.",
    )
    timeout_keep_alive: float = option(
        5.0, "Close Keep-Alive connections if no new data is received within this timeout."
    )
    timeout_graceful_shutdown: float = option(
        30.0,
        "Maximum number of seconds to wait for open connections and tasks on shutdown.",
    )
    malloc_threshold: int = option(
        32 * 2**20,
        "glibc only: memory blocks up to this many bytes (at most 32 MiB) come from the heap "
        "and as many free bytes stay mapped, so big messages do not map and fault in fresh "
        "pages each time; 0 keeps the allocator's defaults.  Applied by the asgiws command "
        "and asgiws.run(), which own the process.",
        metavar="BYTES",
    )
    limit_concurrency: int | None = option(
        None, "Maximum number of concurrent connections before issuing HTTP 503 responses."
    )

    # --- headers and logging -------------------------------------------------
    server_header: bool = option(True, "Enable default Server header.")
    date_header: bool = option(True, "Enable default Date header.")
    headers: list[str] = option(
        None,
        "Specify custom default HTTP response headers as a Name:Value pair (repeatable).",
        flag="--header",
        metavar="NAME:VALUE",
        factory=list,
    )
    log_level: str = option("info", "Log level.", choices=tuple(LOG_LEVELS))
    access_log: bool = option(True, "Enable access log.")
    use_colors: bool | None = option(None, "Colorize log output.", cli=False)

    # --- TLS -----------------------------------------------------------------
    ssl_keyfile: str | None = option(None, "SSL key file.", metavar="PATH")
    ssl_certfile: str | None = option(None, "SSL certificate file.", metavar="PATH")
    ssl_keyfile_password: str | None = option(None, "SSL keyfile password.")
    ssl_ca_certs: str | None = option(None, "CA certificates file.", metavar="PATH")
    ssl_context: ssl.SSLContext | None = option(
        None, "A ready SSLContext (programmatic use); takes precedence over the files.", cli=False
    )

    # --- WebSocket -----------------------------------------------------------
    ws_max_size: int = option(
        2**20, "Largest incoming WebSocket message in bytes (after decompression); else 1009."
    )
    ws_max_queue: int = option(
        32, "Incoming messages buffered per connection before the socket stops being read."
    )
    ws_ping_interval: float | None = option(
        20.0, "Send a keepalive ping every this many seconds (0 or none disables)."
    )
    ws_ping_timeout: float | None = option(
        20.0, "Close with 1011 when a keepalive pong does not arrive within this many seconds."
    )
    ws_close_timeout: float = option(
        10.0, "Seconds to wait for the closing handshake before dropping the TCP connection."
    )
    ws_read_limit: int = option(
        2**16, "High-water mark of the incoming byte buffer before reading pauses."
    )
    ws_write_limit: int = option(
        2**16, "High-water mark of the outgoing buffer; send() waits above it."
    )
    ws_origins: list[str] = option(
        None,
        "Allowed Origin header values (repeatable); other origins get 403. Default: any.",
        flag="--ws-origins",
        metavar="ORIGIN",
        factory=list,
    )
    ws_per_message_deflate: bool = option(True, "Negotiate permessage-deflate (RFC 7692).")
    ws_deflate_level: int = option(6, "zlib compression level 1-9 for permessage-deflate.")
    ws_deflate_mem_level: int = option(5, "zlib memLevel 1-9 for permessage-deflate.")
    ws_deflate_server_max_window_bits: int = option(
        12, "Largest LZ77 window (8-15) the server compresses with (12 as in websockets)."
    )
    ws_deflate_client_max_window_bits: int | None = option(
        None, "Ask clients to compress with at most this window (8-15); default: as offered."
    )
    ws_deflate_server_no_context_takeover: bool = option(
        False, "Reset the server's compression context after every message."
    )
    ws_deflate_client_no_context_takeover: bool = option(
        False, "Ask clients to reset their compression context after every message."
    )
    ws_logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = option(
        None, "Logger for WebSocket frames and state changes (default 'asgiws.websocket').",
        cli=False,
    )
    ws_shutdown_close_code: int = option(
        1012, "Close code sent to WebSocket clients on graceful shutdown (1012 or 1001)."
    )
    ws_handshake_timeout: float = option(
        10.0, "Seconds a client may take to complete the opening handshake."
    )

    # --- derived, filled by load() -------------------------------------------
    loaded: bool = field(default=False, init=False, repr=False)
    loaded_app: ASGIApp = field(init=False, repr=False)
    encoded_headers: list[tuple[bytes, bytes]] = field(
        default_factory=list, init=False, repr=False
    )
    ssl: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------------
    def validate(self) -> None:
        """Reject values that cannot work, with a message that says what to fix."""
        for f in options():
            choices = f.metadata["choices"]
            value = getattr(self, f.name)
            if choices is not None and value not in choices:
                raise ConfigError(
                    f"{flag_of(f)}: {value!r} is not one of {', '.join(map(str, choices))}"
                )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port: {self.port} is not between 0 and 65535")
        if self.malloc_threshold < 0:
            raise ConfigError(f"{flag_of('malloc_threshold')}: must be 0 or a positive integer")
        for name in ("ws_max_size", "ws_max_queue", "ws_read_limit", "ws_write_limit"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{flag_of(name)}: must be a positive integer")
        for name in ("ws_deflate_server_max_window_bits", "ws_deflate_client_max_window_bits"):
            bits = getattr(self, name)
            if bits is not None and not 8 <= bits <= 15:
                raise ConfigError(f"{flag_of(name)}: {bits} is not between 8 and 15")
        for name in ("ws_deflate_level", "ws_deflate_mem_level"):
            if not 1 <= getattr(self, name) <= 9:
                raise ConfigError(f"{flag_of(name)}: must be between 1 and 9")
        for name in ("ws_ping_interval", "ws_ping_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                setattr(self, name, None)
        for header in self.headers:
            if ":" not in header:
                raise ConfigError(f"--header: {header!r} is not of the form Name:Value")
        if (self.ssl_keyfile is None) != (self.ssl_certfile is None):
            raise ConfigError("--ssl-keyfile and --ssl-certfile must be given together")

    @property
    def is_ssl(self) -> bool:
        return self.ssl_certfile is not None or self.ssl_context is not None

    @property
    def log_level_number(self) -> int:
        return LOG_LEVELS[self.log_level]

    def load(self) -> None:
        """Import the app, build TLS context and default headers. Idempotent."""
        if self.loaded:
            return
        self.encoded_headers = [
            (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
            for name, value in (h.split(":", 1) for h in self.headers)
        ]
        if self.ssl_context is not None:
            self.ssl = self.ssl_context
        elif self.ssl_certfile is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(
                    self.ssl_certfile, self.ssl_keyfile, self.ssl_keyfile_password
                )
                if self.ssl_ca_certs:
                    context.load_verify_locations(self.ssl_ca_certs)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"--ssl-certfile/--ssl-keyfile: cannot load: {exc}") from exc
            self.ssl = context
        self.loaded_app = load_app(self.app, factory=self.factory, app_dir=self.app_dir)
        self.loaded = True


def load_app(app: ASGIApp | str | None, *, factory: bool, app_dir: str) -> ASGIApp:
    """Resolve 'module:attr' (or an object) to an ASGI callable, or raise ConfigError."""
    if app is None:
        raise ConfigError("no APP given: pass 'module:attribute', e.g. 'myapp:app'")
    if isinstance(app, str):
        module_name, _, attrs = app.partition(":")
        if not module_name or not attrs:
            raise ConfigError(f"APP {app!r} must be of the form 'module:attribute'")
        path = os.path.abspath(app_dir)
        if path not in sys.path:
            sys.path.insert(0, path)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                raise ConfigError(f"could not import module {module_name!r}") from exc
            raise
        obj: Any = module
        try:
            for attr in attrs.split("."):
                obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ConfigError(
                f"attribute {attrs!r} not found in module {module_name!r}"
            ) from exc
    else:
        obj = app
    if factory:
        if not callable(obj):
            raise ConfigError("--factory: APP is not callable")
        obj = obj()
    if not callable(obj):
        raise ConfigError(f"APP {app!r} is not callable, so it is not an ASGI app")
    return obj  # type: ignore[no-any-return]


def options() -> list[dataclasses.Field[Any]]:
    """The declared options (fields with CLI metadata)."""
    return [f for f in dataclasses.fields(Config) if "help" in f.metadata]


def flag_of(f: dataclasses.Field[Any] | str) -> str:
    if isinstance(f, str):
        f = next(o for o in options() if o.name == f)
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")
