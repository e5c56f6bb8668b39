"""The server: the app, sockets, signals, lifespan, graceful shutdown.

`Server(config)` with `await server.serve()`, `server.started` and
`server.should_exit` are the names a uvicorn user already knows.
`Config` only declares options; what is built from them at run time (the
loaded app, the SSL context, the encoded headers) lives here, on the server.
Nothing here polls: the main loop waits on an event, the Date header is
refreshed by a `call_later` chain, and shutdown waits on the connection
registry becoming empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import importlib
import inspect
import logging
import os
import random
import signal
import socket
import ssl
import stat
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from asgiws.access_log import AccessLog
from asgiws.access_log import logger as access_logger
from asgiws.config import Config, ConfigError
from asgiws.connection.writer import Burst
from asgiws.listeners import bind_tcp, fixed_local_address, listen_sockets, running_uvloop
from asgiws.logs import configure_logging
from asgiws.memory import tune_malloc
from asgiws.observer import HttpRequestDone, Observer, combine
from asgiws.options import connection_options
from asgiws.proxy_headers import TrustedProxies, forwarded_allow_ips
from asgiws.types import ASGIApp, ConnectionContext, ConnectionInfo, Headers, ServerState
from asgiws.websocket import zlib_backend

if TYPE_CHECKING:
    from asgiws.metrics import Metrics

logger = logging.getLogger("asgiws.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ACCEPTED_SETTLE_TURNS = 3
"""Event-loop turns `shutdown()` gives accepted sockets to become connections."""


class Server:
    def __init__(self, config: Config, observers: Iterable[Observer] = ()) -> None:
        """Sets up logging from `config` (`Config.log_config`; None leaves it to
        the program), as uvicorn's Config does.  Raises ConfigError when the
        log configuration cannot be applied."""
        self.config = config
        configure_logging(config)
        self.observers: list[Observer] = list(observers)
        """Subscribers to what connections report (`asgiws.observer`); add
        them before `startup()`.  The access log joins them when it is on."""
        self.server_state = ServerState()
        """`server_state.app` is the loaded app, set by `load()`."""
        self.ssl_context: ssl.SSLContext | None = None
        """`Config.ssl_context`, or the one `load()` builds from the SSL files."""
        self.custom_headers: Headers = []
        self.metrics: Metrics | None = None
        """`--metrics`: the registry, its observer and endpoint, built by `load()`."""
        """`Config.headers` encoded once by `load()`, sent with every response."""
        self.loaded = False
        self.started = False
        self.force_exit = False
        self._should_exit = False
        self._exit_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._date_timer: asyncio.TimerHandle | None = None
        self._lifespan: Any = None
        self.sockets: list[socket.socket] = []
        self.exit_code = 0
        self._own_uds: tuple[int, int] | None = None
        """(device, inode) of the `--uds` socket file this server made, removed on shutdown."""
        self.announce_listening = True
        """Log "asgiws running on ..." per socket; a worker leaves it to its supervisor."""
        self.metrics_socket: socket.socket | None = None
        """The `--metrics-port` listener a supervisor bound for its workers, if any."""
        self.on_started: Callable[[], None] | None = None
        """Called once the server listens (a worker tells its supervisor)."""

    # --- should_exit: settable from a signal handler, another task or thread --
    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._loop is not None and self._exit_event is not None:
            if self._loop_is_current():
                self._exit_event.set()
            else:
                self._loop.call_soon_threadsafe(self._exit_event.set)

    def _loop_is_current(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    # ------------------------------------------------------------------------
    def run(self, sockets: Sequence[socket.socket] | None = None) -> int:
        """Blocking entry point: pick the event loop, serve until told to stop.

        This owns the process, so it also tunes the allocator
        (`Config.malloc_threshold`, see `asgiws.memory`)."""
        tune_malloc(self.config.malloc_threshold)
        return run_with_loop(self.config.loop, self.serve(sockets))

    async def serve(self, sockets: Sequence[socket.socket] | None = None) -> int:
        """Start, wait for SIGINT/SIGTERM or `should_exit`, shut down; return the exit code."""
        logger.info("Started server process [%d]", os.getpid())
        if self.config.ws_per_message_deflate:
            logger.debug("permessage-deflate runs on %s", zlib_backend.NAME)
        with self._capture_signals():
            await self.startup(sockets)
            if self.started and self.on_started is not None:
                self.on_started()
            await self.main_loop()
            await self.shutdown()
        return self.exit_code

    async def main_loop(self) -> None:
        """Wait until `should_exit` is set (by a signal, a task or another thread)."""
        assert self._exit_event is not None, "startup() first"
        await self._exit_event.wait()

    # --- startup --------------------------------------------------------------
    def load(self) -> None:
        """Import the app, build the SSL context and encode the custom headers.

        `startup()` calls it when nobody did; the CLI calls it first, to report
        a bad APP before the event loop starts.  Raises ConfigError."""
        if self.loaded:
            return
        config = self.config
        self.custom_headers = encode_headers(config.headers)
        self.ssl_context = config.ssl_context or ssl_context_from_files(config)
        self.server_state.app = load_app(config.app, factory=config.factory, app_dir=config.app_dir)
        self.server_state.ws_options = connection_options(config)
        if config.proxy_headers:
            self.server_state.trusted_proxies = TrustedProxies(
                forwarded_allow_ips(config.forwarded_allow_ips)
            )
        if config.metrics:
            from asgiws.metrics import Metrics

            self.metrics = Metrics(config)
            if config.metrics_port is None:
                self.server_state.app = self.metrics.wrap(self.server_state.app)
        self.loaded = True

    def _subscribe(self) -> None:
        """Hand the connections one observer: the subscribers and, when
        `access_log` is on and its logger would write, the access log."""
        subscribers = list(self.observers)
        if self.config.access_log and access_logger.isEnabledFor(logging.INFO):
            subscribers.append(AccessLog())
        if self.metrics is not None:
            subscribers.append(self.metrics.observer)
        if self.config.limit_max_requests is not None:
            limit = self.config.limit_max_requests
            limit += random.randint(0, self.config.limit_max_requests_jitter)
            subscribers.append(RequestLimit(limit, self._request_limit_reached))
        self.server_state.observer = combine(subscribers)

    def _request_limit_reached(self, limit: int) -> None:
        if not self._should_exit:
            logger.info("Maximum request limit of %d exceeded. Terminating process.", limit)
            self.should_exit = True

    async def startup(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Load the app, run lifespan startup, listen. Sets `started`, or `should_exit`
        with `exit_code` when something failed."""
        self._loop = asyncio.get_running_loop()
        self.server_state.handshake_burst = Burst(self._loop)
        self._exit_event = asyncio.Event()
        if self._should_exit:
            self._exit_event.set()
        self.load()
        self._subscribe()
        if self.config.lifespan != "off":
            from asgiws.asgi.lifespan import LifespanOn

            self._lifespan = LifespanOn(self.config, self.server_state)
            await self._lifespan.startup()
            if self._lifespan.should_exit:  # the lifespan has logged why
                self.exit_code = 3
                self.should_exit = True
                return
        self._refresh_default_headers()
        try:
            await self._listen(sockets)
            if self.metrics is not None:
                await self.metrics.start(self.metrics_socket)
        except OSError as exc:
            logger.error("cannot listen on %s: %s", bind_target(self.config), exc.strerror or exc)
            self.exit_code = 1
            self.should_exit = True
            return
        self.started = True

    def _protocol_factory(
        self, server_address: tuple[str, int] | None = None
    ) -> Callable[[], asyncio.Protocol]:
        """What a listening socket calls per accepted connection: built once
        (an import statement per connection costs ~7k instructions).  The
        context is a placeholder: `connection_made` builds the real one, with
        its `is_tls` (every connection of a listener with an SSL context is
        TLS, and no other is) and `server_address` when the listener fixes
        it (`fixed_local_address`; None: looked up per connection)."""
        from asgiws.asgi.websocket import upgrade
        from asgiws.http.protocol import HttpProtocol

        is_tls = self.ssl_context is not None
        info = ConnectionInfo(None, server_address, is_tls)
        ctx = ConnectionContext(self.config, self.server_state, info)
        return functools.partial(HttpProtocol, ctx, upgrade, asyncio.get_running_loop())

    async def _listen(self, sockets: Sequence[socket.socket] | None) -> None:
        config = self.config
        ssl_context = self.ssl_context
        loop = asyncio.get_running_loop()
        if not sockets and config.fd is None and config.uds is not None:
            # A stale socket keeps its permissions; a new one is 0o666, as uvicorn makes it.
            mode = remove_stale_socket(config.uds)
            self._servers.append(
                await loop.create_unix_server(
                    self._protocol_factory(),
                    path=config.uds,
                    ssl=ssl_context,
                    backlog=config.backlog,
                )
            )
            os.chmod(config.uds, 0o666 if mode is None else stat.S_IMODE(mode))
            made = os.stat(config.uds)
            self._own_uds = (made.st_dev, made.st_ino)
        else:
            if sockets:
                listening = list(sockets)
            elif config.fd is not None:
                # The family (TCP or UNIX) and type come from the socket itself.
                listening = [socket.socket(fileno=config.fd)]
            else:
                per_address = listen_sockets(config.listen_sockets, running_uvloop(loop))
                listening = bind_tcp(config.host, config.port, config.backlog, per_address)
            factories: dict[tuple[str, int] | None, Callable[[], asyncio.Protocol]] = {}
            for sock in listening:
                address = fixed_local_address(sock)
                factory = factories.get(address)
                if factory is None:
                    factory = factories[address] = self._protocol_factory(address)
                self._servers.append(
                    await loop.create_server(
                        factory, sock=sock, ssl=ssl_context, backlog=config.backlog
                    )
                )
        self.sockets = [s for server in self._servers for s in server.sockets]
        if self.announce_listening:
            log_listening(self.sockets, config.is_ssl)

    def _remove_own_socket(self) -> None:
        """Remove the `--uds` file this server made, unless another one took its place."""
        if self.config.uds is not None and self._own_uds is not None:
            remove_socket_file(self.config.uds, self._own_uds)
        self._own_uds = None

    def _refresh_default_headers(self) -> None:
        """Server/Date/custom headers for every response; Date once a second."""
        config = self.config
        headers: list[tuple[bytes, bytes]] = []
        if config.server_header:
            headers.append((b"server", b"asgiws"))
        if config.date_header:
            headers.append((b"date", email.utils.formatdate(usegmt=True).encode()))
        headers.extend(self.custom_headers)
        self.server_state.default_headers = headers
        if config.date_header and self._loop is not None:
            self._date_timer = self._loop.call_later(1.0, self._refresh_default_headers)

    # --- shutdown -------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop accepting, close every connection gracefully (bounded), lifespan shutdown."""
        logger.info("Shutting down")
        self.server_state.shutting_down = True
        for server in self._servers:
            server.close()
        # A socket the listener accepted just before it closed becomes a
        # connection two loop turns later (accept task, then connection_made);
        # let it register, so it is served, not dropped when the process exits
        # (a worker recycled by --limit-max-requests shares a busy socket).
        for _ in range(ACCEPTED_SETTLE_TURNS):
            await asyncio.sleep(0)
        for conn in list(self.server_state.connections):
            conn.shutdown()
        timeout = self.config.timeout_graceful_shutdown
        try:
            await asyncio.wait_for(self._drain(), timeout)
        except asyncio.TimeoutError:
            logger.error(
                "Cancel %d running task(s), timeout graceful shutdown exceeded",
                len(self.server_state.tasks),
            )
            for task in self.server_state.tasks:
                task.cancel()
            if self.server_state.tasks:
                await asyncio.wait(set(self.server_state.tasks), timeout=1.0)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._remove_own_socket()
        if self._date_timer is not None:
            self._date_timer.cancel()
        if self._lifespan is not None and not self._lifespan.should_exit:
            await self._lifespan.shutdown()
        if self.metrics is not None:
            await self.metrics.stop()
        self.started = False

    async def _drain(self) -> None:
        """Wait until every connection has closed and every app task ended."""
        if self.server_state.connections:
            logger.info("Waiting for connections to close. (CTRL+C to force quit)")
        await self.server_state.connections.wait_empty()
        while self.server_state.tasks:
            await asyncio.wait(set(self.server_state.tasks))

    # --- signals --------------------------------------------------------------
    @contextlib.contextmanager
    def _capture_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        try:
            for sig in HANDLED_SIGNALS:
                loop.add_signal_handler(sig, self.handle_exit, sig)
                installed.append(sig)
        except NotImplementedError:  # pragma: no cover - Windows
            pass
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def handle_exit(self, sig: signal.Signals) -> None:
        if self._should_exit and sig == signal.SIGINT:
            self.force_exit = True
            for task in self.server_state.tasks:
                task.cancel()
        self.should_exit = True


class RequestLimit(Observer):
    """`--limit-max-requests`: calls `reached(limit)` once `limit` HTTP
    requests were answered (uvicorn counts HTTP requests, not WebSockets)."""

    def __init__(self, limit: int, reached: Callable[[int], None]) -> None:
        self.limit = limit
        self.count = 0
        self.reached = reached

    def http_request_done(self, event: HttpRequestDone) -> None:
        self.count += 1
        if self.count >= self.limit:
            self.reached(self.limit)


def log_listening(sockets: Iterable[socket.socket], is_ssl: bool) -> None:
    """One "asgiws running on ..." line per address listened on (tests and
    users wait for it; the sockets of a `--listen-sockets` group share one)."""
    scheme = "https" if is_ssl else "http"
    seen: set[tuple[int, object]] = set()
    for sock in sockets:
        name = sock.getsockname()
        if (sock.family, name) in seen:
            continue
        seen.add((sock.family, name))
        if sock.family == socket.AF_UNIX:
            where = f"unix socket {name}"
        elif sock.family == socket.AF_INET6:
            where = f"{scheme}://[{name[0]}]:{name[1]}"
        else:
            where = f"{scheme}://{name[0]}:{name[1]}"
        logger.info("asgiws running on %s (Press CTRL+C to quit)", where)


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
            raise ConfigError(f"attribute {attrs!r} not found in module {module_name!r}") from exc
    else:
        obj = app
    if not factory and takes_no_arguments(obj):
        # uvicorn's behaviour and words: a uvicorn command line works unchanged.
        logger.warning(
            "ASGI app factory detected. Using it, "
            "but please consider setting the --factory flag explicitly."
        )
        factory = True
    if factory:
        if not callable(obj):
            raise ConfigError("--factory: APP is not callable")
        obj = obj()
    if not callable(obj):
        raise ConfigError(f"APP {app!r} is not callable, so it is not an ASGI app")
    return obj  # type: ignore[no-any-return]


def takes_no_arguments(obj: object) -> bool:
    """Whether `obj` is a factory, not an app: callable with no arguments and
    not with the three an ASGI app takes."""
    if not callable(obj):
        return False
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    try:
        signature.bind()
    except TypeError:
        return False
    try:
        signature.bind(None, None, None)
    except TypeError:
        return True
    return False


def bind_target(config: Config) -> str:
    """What the server binds, as the error line names it."""
    if config.fd is not None:
        return f"file descriptor {config.fd}"
    if config.uds is not None:
        return f"unix socket {config.uds}"
    return f"{config.host}:{config.port}"


def remove_socket_file(path: str, made: tuple[int, int]) -> None:
    """Remove the socket file at `path` if it is still the one (device, inode) `made`."""
    with contextlib.suppress(OSError):
        found = os.stat(path)
        if (found.st_dev, found.st_ino) == made:
            os.remove(path)


def remove_stale_socket(path: str) -> int | None:
    """Make room for a `--uds` socket at `path`; return the mode of a stale
    socket removed from there (None when the path was free).

    Only a socket nothing listens on is removed.  A live socket (another
    server) or anything else (a file that may hold data) raises OSError with a
    message that says what is there (the caller names the path)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(found.st_mode):
        raise OSError("something that is not a socket is there; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.remove(path)  # stale: left by a server that did not clean up
        return found.st_mode
    finally:
        probe.close()
    raise OSError("another process is listening on it")


def ssl_context_from_files(config: Config) -> ssl.SSLContext | None:
    """A server SSLContext from `--ssl-certfile/--ssl-keyfile` (None without them)."""
    if config.ssl_certfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(
            config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(ssl_load_error(config, exc)) from exc
    context.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
    if config.ssl_ciphers:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"--ssl-ciphers {config.ssl_ciphers!r}: no cipher matches: {exc}"
            ) from exc
    if config.ssl_ca_certs:
        try:
            context.load_verify_locations(config.ssl_ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--ssl-ca-certs {config.ssl_ca_certs}: cannot load: {exc}") from exc
    return context


def ssl_load_error(config: Config, exc: Exception) -> str:
    """Which file `load_cert_chain` could not use, and why: OpenSSL does not say."""
    assert config.ssl_certfile is not None
    certfile, keyfile = config.ssl_certfile, config.ssl_keyfile
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as missing:
            return f"{flag} {path}: cannot read: {missing.strerror or missing}"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(certfile)
    except (OSError, ssl.SSLError):
        return f"--ssl-certfile {certfile}: not a PEM certificate: {exc}"
    key = keyfile if keyfile is not None else certfile
    return (
        f"--ssl-keyfile {key}: cannot load the private key (not a PEM key, a wrong "
        f"--ssl-keyfile-password, or not the key of {certfile}): {exc}"
    )


def encode_headers(headers: Sequence[str]) -> Headers:
    """`Name: Value` strings as ASGI header pairs: lower-cased name, both stripped."""
    return [
        (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
        for name, value in (header.split(":", 1) for header in headers)
    ]


def run_with_loop(loop_name: str, coro: Coroutine[Any, Any, int]) -> int:
    """Run `coro` on the chosen event loop: uvloop when asked (or `auto` and installed)."""
    factory = loop_factory(loop_name)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)
    loop = factory() if factory is not None else asyncio.new_event_loop()  # pragma: no cover
    try:  # pragma: no cover - Python 3.10
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:  # pragma: no cover
        loop.close()


def loop_factory(loop_name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if loop_name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop_name == "uvloop":
            raise ConfigError(
                "--loop uvloop: uvloop is not installed (pip install 'asgiws[standard]')"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
