"""Prometheus metrics (`--metrics`): what the server reports, in the
Prometheus text format (OpenMetrics when the scraper asks for it).

`Metrics` is built by `Server.load()` only when `--metrics` is on, so a
server without it subscribes nothing and imports nothing of this package.
It holds:

- `observer`: a `MetricsObserver` the server subscribes to its connections;
- `endpoint`: the ASGI app that answers a scrape;
- where that endpoint is served: on its own listener (`--metrics-port`,
  `start()`/`stop()`), or at `--metrics-path` on the app's own listener
  (`wrap(app)` puts it in front of the app).

Several processes, one scrape: when `PROMETHEUS_MULTIPROC_DIR` names a
directory (prometheus_client's multiprocess mode), every process writes its
values there and a scrape of any of them reads the whole directory, so it
shows the sum of every process.  This is how `--workers` will aggregate:
the supervisor gives its workers one fresh directory and marks a dead
worker's files with `mark_process_dead(pid)`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING

from asgiws.config import Config, ConfigError
from asgiws.http.framing import build_response_head
from asgiws.types import (
    ASGIApp,
    ConnectionContext,
    ConnectionInfo,
    Receive,
    RequestHead,
    Scope,
    Send,
    ServerState,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from asgiws.metrics.observer import MetricsObserver

__all__ = ["MULTIPROCESS_ENV", "Metrics", "log_served_at", "metrics_host"]

logger = logging.getLogger("asgiws.error")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The metrics of one server: registry, observer, endpoint, listener."""

    def __init__(self, config: Config) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError:
            raise ConfigError(
                "--metrics needs prometheus_client: pip install 'asgiws[metrics]'"
            ) from None
        from asgiws.metrics.observer import MetricsObserver

        self.config = config
        # A registry per server, not prometheus_client's global one: two
        # servers in one process (tests, an embedding program) count apart.
        self.registry = CollectorRegistry()
        self.observer: MetricsObserver = MetricsObserver(self.registry)
        self.scraped: CollectorRegistry = self.registry
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        if self.multiprocess_dir is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            if not os.path.isdir(self.multiprocess_dir):
                raise ConfigError(
                    f"--metrics: ${MULTIPROCESS_ENV} {self.multiprocess_dir!r} is not a directory"
                )
            self.scraped = CollectorRegistry()
            MultiProcessCollector(self.scraped, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        self._server: asyncio.base_events.Server | None = None
        self._state = ServerState(app=self.endpoint)

    # --- the scrape -------------------------------------------------------------
    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics as (body, content type), in the format `accept` asks for."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.scraped), content_type

    async def endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI app: GET/HEAD of the metrics path gets the metrics, else 404/405."""
        if scope["type"] != "http":
            return  # the own listener's lifespan never runs; nothing else comes here
        path = scope["path"][len(scope["root_path"]) :]
        if path != self.config.metrics_path:
            await _respond(send, 404, b"Not Found", "text/plain; charset=utf-8")
            return
        if scope["method"] not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET, HEAD")]
            await _respond(send, 405, b"Method Not Allowed", "text/plain; charset=utf-8", allow)
            return
        accept = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"accept"), "")
        body, content_type = self.exposition(accept)
        await _respond(send, 200, body, content_type)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app` with the metrics endpoint in front of it at the metrics path
        (for when there is no `--metrics-port`)."""
        endpoint = self.endpoint
        path = self.config.root_path + self.config.metrics_path

        async def app_with_metrics(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == path:
                await endpoint(scope, receive, send)
            else:
                await app(scope, receive, send)

        return app_with_metrics

    # --- the own listener ---------------------------------------------------------
    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on `--metrics-host:--metrics-port` (nothing without a port),
        or on `sock`, the listener a supervisor bound once for its workers
        (it has logged where)."""
        config = self.config
        if config.metrics_port is None:
            return
        from asgiws.http.protocol import HttpProtocol

        self._state.default_headers = [(b"server", b"asgiws")] if config.server_header else []
        ctx = ConnectionContext(config, self._state, ConnectionInfo(None, None, False))
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(
                lambda: HttpProtocol(ctx, _no_websocket), sock=sock
            )
            return
        self._server = await loop.create_server(
            lambda: HttpProtocol(ctx, _no_websocket),
            host=metrics_host(config),
            port=config.metrics_port,
            reuse_address=True,
        )
        for bound in self._server.sockets:
            log_served_at(bound, config)

    async def stop(self) -> None:
        """Close the own listener and its connections; in multiprocess mode,
        retire this process's live gauges (prometheus_client's protocol)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for conn in list(self._state.connections):
                conn.shutdown()
            try:
                await asyncio.wait_for(self._state.connections.wait_empty(), 5.0)
            except asyncio.TimeoutError:
                logger.warning("metrics listener: connections still open after 5 s")
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def metrics_host(config: Config) -> str:
    return config.metrics_host if config.metrics_host is not None else config.host


def log_served_at(sock: socket.socket, config: Config) -> None:
    name = sock.getsockname()
    where = f"[{name[0]}]:{name[1]}" if ":" in name[0] else f"{name[0]}:{name[1]}"
    logger.info("Metrics served at http://%s%s", where, config.metrics_path)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", b"%d" % len(body)),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _no_websocket(
    transport: asyncio.Transport, head: RequestHead, trailing: bytes, ctx: ConnectionContext
) -> None:
    """The metrics listener speaks no WebSocket: an upgrade request gets 404."""
    body = b"Not Found"
    response = build_response_head(
        404,
        [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"9")],
        method=head.method,
        http_version=head.http_version,
        keep_alive=False,
        default_headers=ctx.server_state.default_headers,
    )
    transport.write(response.data + body)
    transport.close()

