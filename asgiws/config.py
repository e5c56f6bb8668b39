"""The one declaration of every asgiws option.

Each option is one dataclass field: its annotation is its type, and
`option(...)` gives its default, help text, CLI spelling and allowed values.
The CLI (`asgiws.cli`), the programmatic API (`Config`, `Server`, `run`),
the README table (`scripts/gen_options_doc.py`) and the handler API read this
table; nothing re-lists options by hand.
Where uvicorn has an option for the same thing, the name, default meaning and
flag are uvicorn's, so a uvicorn user switches by changing one word.

`Config` only declares and validates: it never changes a value it was given,
and it holds no runtime objects (the loaded app, the SSL context built from
the files and the encoded headers belong to `asgiws.server.Server`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import ssl
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

from asgiws.listeners import can_share_port
from asgiws.memory import MAX_MMAP_THRESHOLD
from asgiws.types import ASGIApp
from asgiws.websocket.deflate import (
    DEFAULT_LEVEL,
    DEFAULT_MEM_LEVEL,
    DEFAULT_SERVER_MAX_WINDOW_BITS,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    WebSocketLogger: TypeAlias = logging.Logger | logging.LoggerAdapter[logging.Logger]
else:
    # The declared types are resolved at run time (`declared_types`), and
    # LoggerAdapter only takes a type argument at run time from Python 3.11.
    WebSocketLogger = logging.Logger | logging.LoggerAdapter

LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}

NONE_WORDS = frozenset({"none", "off", "null"})
"""How the command line spells None for an optional (`X | None`) option."""
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """An option value or the app path is wrong; the message says what to fix."""


# --- allowed values -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Interval:
    """Numbers from `low` (exclusive when `low_open`) up to `high` (if any)."""

    low: int
    high: int | None = None
    low_open: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.high is not None:
            return f"from {self.low} to {self.high}"
        return f"{'>' if self.low_open else '>='} {self.low}"


@dataclass(frozen=True, slots=True)
class OneOf:
    """A fixed set of values."""

    values: tuple[object, ...]

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def __str__(self) -> str:
        names = [str(v) for v in self.values]
        if len(names) == 2:
            return " or ".join(names)
        return "one of " + ", ".join(names)


@dataclass(frozen=True, slots=True)
class Matches:
    """Text that matches `pattern`; `text` says how, for the error message."""

    pattern: str
    text: str

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None

    def __str__(self) -> str:
        return self.text


Allowed = Interval | OneOf | Matches

POSITIVE = Interval(1)
NON_NEGATIVE = Interval(0)
ABOVE_ZERO = Interval(0, low_open=True)
WINDOW_BITS = Interval(8, 15)
ZLIB_LEVEL = Interval(1, 9)


NO_ORIGIN_WORD = "none"
"""How `--ws-origins` spells "no Origin header": no serialized origin (RFC 6454
6.2: "null" or scheme://host[:port]) can be this word, so it never names a
real Origin value; browsers send the literal "null" for opaque origins."""


def parse_origin(text: str) -> str | None:
    return None if text.lower() == NO_ORIGIN_WORD else text


def default_log_config() -> dict[str, Any]:
    # Imported here: asgiws.logs reads Config.
    from asgiws.logs import default_log_config as fresh_copy

    return fresh_copy()


def off_when_zero(text: str) -> float | None:
    """The command line's `0` disables, as `none` does (the documented spelling)."""
    value = float(text)
    return None if value == 0 else value


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    metavar: str | None = None,
    allowed: Allowed | None = None,
    parse: Callable[[str], Any] | None = None,
    cli: bool = True,
    factory: Callable[[], Any] | None = None,
    shown_default: str | None = None,
) -> Any:
    """Declare one option; its type is the field's annotation.

    `allowed`: the values `Config` accepts, checked at construction and shown
    in `--help` and the README (a `Literal[...]` type is its own `allowed`).
    `parse`: turns command-line text into a value, when the type's own
    conversion (`int`, `float`, `Path`, ...) is not what the flag means.
    `cli=False`: programmatic only (a Python object has no command-line text).
    `shown_default`: how `--help` and the README name a `factory` default.
    """
    metadata = {
        "help": help,
        "flag": flag,
        "metavar": metavar,
        "allowed": allowed,
        "parse": parse,
        "cli": cli,
        "shown_default": shown_default,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """Every option of the server, the handler API and the CLI."""

    app: ASGIApp | str | None = option(None, "The ASGI app, or 'module:attribute'.", cli=False)

    # --- sockets -------------------------------------------------------------
    host: str = option("127.0.0.1", "Bind socket to this host.")
    port: int = option(
        8000, "Bind socket to this port. 0 picks a free port.", allowed=Interval(0, 65535)
    )
    uds: str | None = option(None, "Bind to a UNIX domain socket.", metavar="PATH")
    fd: int | None = option(None, "Bind to socket from this file descriptor.", allowed=NON_NEGATIVE)
    backlog: int = option(
        2048, "Maximum number of connections to hold in backlog.", allowed=POSITIVE
    )
    listen_sockets: int | None = option(
        None,
        "Listening sockets per TCP address, sharing the port (SO_REUSEPORT, Linux). "
        "uvloop accepts one connection per socket per event-loop turn, so N sockets "
        "take a burst of new connections up to N a turn (asyncio's loop takes up to "
        "--backlog a turn from one socket).",
        metavar="N",
        allowed=POSITIVE,
        shown_default="32 with uvloop on Linux, else 1",
    )

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
    lifespan: str = option("auto", "Lifespan implementation.", allowed=OneOf(("auto", "on", "off")))

    # --- event loop and HTTP parser -----------------------------------------
    loop: str = option(
        "auto", "Event loop implementation.", allowed=OneOf(("auto", "asyncio", "uvloop"))
    )
    http: str = option(
        "auto", "HTTP parser implementation.", allowed=OneOf(("auto", "h11", "httptools"))
    )
    h11_max_incomplete_event_size: int = option(
        16 * 1024,
        "Largest request head (request line + headers) in bytes; larger ones get 431.",
        allowed=POSITIVE,
    )
    timeout_keep_alive: float = option(
        5.0,
        "Close Keep-Alive connections if no new data is received within this timeout.",
        allowed=NON_NEGATIVE,
    )
    timeout_graceful_shutdown: float = option(
        30.0,
        "Maximum number of seconds to wait for open connections and tasks on shutdown.",
        allowed=NON_NEGATIVE,
    )
    malloc_threshold: int = option(
        32 * 2**20,
        "glibc only: memory blocks up to this many bytes (at most 32 MiB) come from the heap "
        "and as many free bytes stay mapped, so big messages do not map and fault in fresh "
        "pages each time; 0 keeps the allocator's defaults.  Applied by the asgiws command "
        "and asgiws.run(), which own the process.",
        metavar="BYTES",
        allowed=Interval(0, MAX_MMAP_THRESHOLD),
    )
    limit_concurrency: int | None = option(
        None,
        "Maximum number of concurrent connections before issuing HTTP 503 responses.",
        allowed=POSITIVE,
    )

    limit_max_requests: int | None = option(
        None,
        "Maximum number of HTTP requests to service before terminating the process (under "
        "--workers the supervisor starts a replacement; the socket stays open meanwhile).",
        allowed=POSITIVE,
    )
    limit_max_requests_jitter: int = option(
        0,
        "Maximum jitter to add to limit_max_requests. Staggers worker restarts to avoid all "
        "workers restarting simultaneously.",
        allowed=NON_NEGATIVE,
    )

    # --- processes -------------------------------------------------------------
    workers: int | None = option(
        None,
        "Number of worker processes. Defaults to the $WEB_CONCURRENCY environment variable "
        "if available, or 1. Ignored with --reload.",
        allowed=POSITIVE,
    )
    timeout_worker_healthcheck: float = option(
        5.0,
        "Maximum number of seconds to wait for a worker to respond to a healthcheck; a "
        "worker that does not answer in time is killed and replaced.",
        allowed=ABOVE_ZERO,
    )
    reload: bool = option(
        False, "Enable auto-reload (needs watchfiles: pip install 'asgiws[watchfiles]')."
    )
    reload_dirs: list[str] = option(
        None,
        "Set reload directories explicitly, instead of using the current working directory "
        "(repeatable).",
        flag="--reload-dir",
        metavar="PATH",
        factory=list,
    )
    reload_includes: list[str] = option(
        None,
        "Set glob patterns to include while watching for files (repeatable). Includes '*.py' "
        "by default; these defaults can be overridden with --reload-exclude.",
        flag="--reload-include",
        metavar="GLOB",
        factory=list,
    )
    reload_excludes: list[str] = option(
        None,
        "Set glob patterns (or directories) to exclude while watching for files "
        "(repeatable). Includes '.*', '.py[cod]', '.sw.*', '~*' by default; these defaults "
        "can be overridden with --reload-include.",
        flag="--reload-exclude",
        metavar="GLOB",
        factory=list,
    )
    reload_delay: float = option(
        0.25,
        "Seconds to wait after a change for more changes before restarting once.",
        allowed=NON_NEGATIVE,
    )

    # --- headers and logging -------------------------------------------------
    server_header: bool = option(True, "Enable default Server header.")
    date_header: bool = option(True, "Enable default Date header.")
    headers: list[str] = option(
        None,
        "Specify custom default HTTP response headers as a Name:Value pair (repeatable).",
        flag="--header",
        metavar="NAME:VALUE",
        allowed=Matches(r"[^:]+:.*", "of the form Name:Value"),
        factory=list,
    )
    log_config: dict[str, Any] | str | None = option(
        None,
        "Logging configuration: a .json or .yaml (PyYAML) file for logging.config.dictConfig, "
        "any other file for fileConfig; a dict for dictConfig in Python; none leaves logging "
        "to the program.",
        metavar="PATH",
        parse=str,
        factory=default_log_config,
        shown_default="asgiws's own",
    )
    log_level: str = option("info", "Log level.", allowed=OneOf(tuple(LOG_LEVELS)))
    access_log: bool = option(True, "Enable access log.")
    use_colors: bool | None = option(
        None, "Colorize log output (default: only when stderr is a terminal)."
    )

    # --- behind a proxy ------------------------------------------------------
    proxy_headers: bool = option(
        True,
        "Enable X-Forwarded-Proto, X-Forwarded-For (and RFC 7239 Forwarded) to populate "
        "url scheme and remote address info, from the peers --forwarded-allow-ips trusts.",
    )
    forwarded_allow_ips: str | None = option(
        None,
        "Comma separated list of IP Addresses, IP Networks, or literals (e.g. UNIX Socket "
        "path, or 'unix:' for every UNIX-socket peer) to trust with proxy headers. Defaults "
        "to the $FORWARDED_ALLOW_IPS environment variable if available, or '127.0.0.1'. "
        "The literal '*' means trust everything.",
        metavar="IPS",
    )

    # --- metrics ---------------------------------------------------------------
    metrics: bool = option(
        False,
        "Serve Prometheus metrics (needs prometheus_client: pip install 'asgiws[metrics]').",
    )
    metrics_port: int | None = option(
        None,
        "Serve metrics on their own listener on this port (0 picks a free one); none serves "
        "them at --metrics-path on the app's listener, ahead of the app.",
        allowed=Interval(0, 65535),
    )
    metrics_host: str | None = option(
        None, "Host of the --metrics-port listener; none: the same as --host."
    )
    metrics_path: str = option(
        "/metrics",
        "Path the metrics are served at.",
        allowed=Matches(r"/\S*", "a path starting with /"),
    )

    # --- TLS -----------------------------------------------------------------
    ssl_keyfile: str | None = option(None, "SSL key file.", metavar="PATH")
    ssl_certfile: str | None = option(None, "SSL certificate file.", metavar="PATH")
    ssl_keyfile_password: str | None = option(None, "SSL keyfile password.")
    ssl_ca_certs: str | None = option(None, "CA certificates file.", metavar="PATH")
    ssl_cert_reqs: int = option(
        int(ssl.CERT_NONE),
        "Whether client certificate is required (see stdlib ssl module's): 0 CERT_NONE, "
        "1 CERT_OPTIONAL, 2 CERT_REQUIRED (verified against --ssl-ca-certs).",
        allowed=OneOf((0, 1, 2)),
    )
    ssl_ciphers: str | None = option(
        None,
        "Ciphers to use (see stdlib ssl module's), an OpenSSL cipher list for TLS 1.2 and "
        "older. Default: OpenSSL's (uvicorn's 'TLSv1' would leave TLS 1.2 clients only "
        "SHA-1 CBC suites).",
    )
    ssl_context: ssl.SSLContext | None = option(
        None, "A ready SSLContext (programmatic use); takes precedence over the files.", cli=False
    )

    # --- WebSocket -----------------------------------------------------------
    ws_max_size: int = option(
        2**20,
        "Largest incoming WebSocket message in bytes (after decompression); else 1009.",
        allowed=POSITIVE,
    )
    ws_max_queue: int = option(
        32,
        "Incoming messages buffered per connection before the socket stops being read.",
        allowed=POSITIVE,
    )
    ws_ping_interval: float | None = option(
        20.0,
        "Send a keepalive ping every this many seconds (0 or none disables).",
        allowed=NON_NEGATIVE,
        parse=off_when_zero,
    )
    ws_ping_timeout: float | None = option(
        20.0,
        "Close with 1011 when a keepalive pong does not arrive within this many seconds "
        "(0 or none: wait forever).",
        allowed=NON_NEGATIVE,
        parse=off_when_zero,
    )
    ws_close_timeout: float = option(
        10.0,
        "Seconds to wait for the closing handshake before dropping the TCP connection.",
        allowed=NON_NEGATIVE,
    )
    ws_read_limit: int = option(
        2**16,
        "Incoming bytes held unparsed before reading pauses: before the opening "
        "handshake completes, and while ws-max-queue messages wait for the app.",
        allowed=POSITIVE,
    )
    ws_write_limit: int = option(
        2**16, "High-water mark of the outgoing buffer; send() waits above it.", allowed=POSITIVE
    )
    ws_origins: list[str | None] = option(
        None,
        f"Allowed Origin header values (repeatable); other origins get 403. Default: any. "
        f"'{NO_ORIGIN_WORD}' allows clients that send no Origin header (None in Python); "
        "'null' is the Origin browsers send from opaque origins.",
        flag="--ws-origins",
        metavar="ORIGIN",
        parse=parse_origin,
        factory=list,
    )
    ws_per_message_deflate: bool = option(True, "Negotiate permessage-deflate (RFC 7692).")
    ws_deflate_level: int = option(
        DEFAULT_LEVEL,
        (
            "zlib compression level for permessage-deflate (zlib-ng when installed;"
            " ASGIWS_ZLIB=stdlib forces Python's zlib)."
        ),
        allowed=ZLIB_LEVEL,
    )
    ws_deflate_mem_level: int = option(
        DEFAULT_MEM_LEVEL, "zlib memLevel for permessage-deflate.", allowed=ZLIB_LEVEL
    )
    ws_deflate_server_max_window_bits: int = option(
        DEFAULT_SERVER_MAX_WINDOW_BITS,
        "Largest LZ77 window the server compresses with: 14 on zlib-ng (a smaller"
        " window saves little of its fixed 128 KiB hash table and costs CPU), 12 on"
        " Python's zlib, as in websockets.",
        allowed=WINDOW_BITS,
        shown_default="14 (12 on Python's zlib)",
    )
    ws_deflate_client_max_window_bits: int | None = option(
        None,
        "Ask clients to compress with at most this window. Default on a server: 12"
        " when the client's offer lets the server choose (as websockets; a 4 KiB"
        " inflate window per connection instead of 32 KiB), else as offered; on a"
        " client: offer the parameter with no value.",
        allowed=WINDOW_BITS,
    )
    ws_deflate_server_no_context_takeover: bool = option(
        False, "Reset the server's compression context after every message."
    )
    ws_deflate_client_no_context_takeover: bool = option(
        False, "Ask clients to reset their compression context after every message."
    )
    ws_logger: WebSocketLogger | None = option(
        None,
        "Logger for WebSocket frames and state changes (default 'asgiws.websocket').",
        cli=False,
    )
    ws_shutdown_close_code: int = option(
        1012,
        "Close code sent to WebSocket clients on graceful shutdown: 1012 (service restart) "
        "or 1001 (going away).",
        allowed=OneOf((1012, 1001)),
    )
    ws_handshake_timeout: float = option(
        10.0, "Seconds a client may take to complete the opening handshake.", allowed=ABOVE_ZERO
    )

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for the first value that cannot work; change nothing."""
        for f in options():
            value = getattr(self, f.name)
            items = [value]
            if kind_of(f).repeatable:
                if not isinstance(value, list | tuple):
                    raise ConfigError(f"{flag_of(f)}: {value!r} is not a list")
                items = list(value)
            for item in items:
                if not is_allowed(f, item):
                    raise ConfigError(f"{flag_of(f)}: {item!r} is not {allowed_text(f)}")
        if (self.ssl_keyfile is None) != (self.ssl_certfile is None):
            raise ConfigError("--ssl-keyfile and --ssl-certfile must be given together")
        if self.listen_sockets is not None and self.listen_sockets > 1 and not can_share_port():
            raise ConfigError(
                f"--listen-sockets {self.listen_sockets}: sockets share a port only on "
                "Linux (SO_REUSEPORT); leave it out or give 1"
            )

    @property
    def is_ssl(self) -> bool:
        return self.ssl_certfile is not None or self.ssl_context is not None

    @property
    def log_level_number(self) -> int:
        return LOG_LEVELS[self.log_level]


# --- reading the declarations ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class Kind:
    """What an option's declared type means for the CLI and for validation."""

    base: Any
    """`int`, `float`, `str`, `bool`, `Path`, ...: one value (one item of a list)."""
    optional: bool = False
    """`X | None`: None is allowed, spelled `none` on the command line."""
    repeatable: bool = False
    """`list[X]`: a repeatable flag."""
    choices: tuple[object, ...] | None = None
    """`Literal[...]`: the values allowed."""

    @property
    def noun(self) -> str:
        """How an error message names a value of this kind ("an integer ...")."""
        if self.base is int:
            return "an integer"
        if self.base is float:
            return "a number"
        if self.base is bool:
            return "true or false"
        return ""

    def parse(self, text: str) -> Any:
        """One command-line value of this kind; ValueError when `text` spells no such value."""
        if self.optional and text.lower() in NONE_WORDS:
            return None
        if self.base is bool:
            return parse_bool(text)
        return self.base(text)


def kind_of_type(hint: Any) -> Kind:
    """The Kind of a resolved type: `int`, `float | None`, `list[str]`, `Literal[...]`, ..."""
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        hint = members[0] if len(members) == 1 else hint
    origin = typing.get_origin(hint)
    if origin is list:
        item = kind_of_type(typing.get_args(hint)[0])
        # `list[X | None]`: an item may be None (`optional` of a list is about its items).
        return Kind(item.base, optional or item.optional, repeatable=True)
    if origin is Literal:
        choices = typing.get_args(hint)
        return Kind(type(choices[0]), optional, choices=choices)
    return Kind(hint, optional)


@functools.cache
def declared_types() -> dict[str, Any]:
    """Every field's annotation, resolved to a real type."""
    return typing.get_type_hints(Config)


def kind_of(f: dataclasses.Field[Any]) -> Kind:
    return kind_of_type(declared_types()[f.name])


def allowed_of(f: dataclasses.Field[Any]) -> Allowed | None:
    choices = kind_of(f).choices
    declared: Allowed | None = f.metadata["allowed"]
    return OneOf(choices) if choices is not None else declared


def is_allowed(f: dataclasses.Field[Any], value: object) -> bool:
    """Whether `value` (one item, for a list option) is allowed for option `f`."""
    kind = kind_of(f)
    if value is None:
        return kind.optional
    if kind.base is int and not isinstance(value, int):
        return False  # a float would pass the range check, then fail where it is used
    allowed = allowed_of(f)
    return allowed is None or value in allowed


def allowed_text(f: dataclasses.Field[Any]) -> str:
    """The allowed values in words, e.g. "an integer from 0 to 65535", "a number > 0, or none".

    Empty when any value of the declared type will do."""
    kind = kind_of(f)
    allowed = allowed_of(f)
    if allowed is None:
        return ""
    text = f"{kind.noun} {allowed}" if isinstance(allowed, Interval) else str(allowed)
    return f"{text}, or none" if kind.optional else text


def default_text(f: dataclasses.Field[Any]) -> str:
    """The default as a user would type it (booleans as on/off, None as none)."""
    if f.metadata["shown_default"] is not None:
        return str(f.metadata["shown_default"])
    if f.default is dataclasses.MISSING:  # list options: empty by default
        return "none"
    value = f.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    return str(value) if value != "" else '""'


def parse_text(f: dataclasses.Field[Any], text: str) -> Any:
    """One command-line value of option `f` (one item, for a list option).

    Raises ValueError when `text` does not spell a value of the option's type."""
    kind = kind_of(f)
    parse: Callable[[str], Any] | None = f.metadata["parse"]
    # A list option's declared parse spells its own None (`--ws-origins none`),
    # because "null" is a real Origin value.
    if parse is None or (kind.optional and not kind.repeatable and text.lower() in NONE_WORDS):
        return kind.parse(text)
    return parse(text)


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def options() -> list[dataclasses.Field[Any]]:
    """The declared options, in declaration order."""
    return [f for f in dataclasses.fields(Config) if "help" in f.metadata]


def cli_options() -> list[dataclasses.Field[Any]]:
    """The options the command line takes (a Python object has no command-line text)."""
    return [f for f in options() if f.metadata["cli"]]


def flag_of(f: dataclasses.Field[Any] | str) -> str:
    if isinstance(f, str):
        f = next(o for o in options() if o.name == f)
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")
