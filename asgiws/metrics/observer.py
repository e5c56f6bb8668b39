"""The Prometheus metrics of one server, kept up to date by what its
connections report (an `Observer`: nothing here reaches into a connection).

Every name starts with `asgiws_`; counters get prometheus_client's `_total`
suffix in the exposition.  Labels have bounded values: a connection kind,
a status (100..599, 0), a direction, a close code (1000..4999), a side, a
skip reason; never a path or a client address.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from asgiws.observer import (
    BroadcastSkipped,
    BroadcastSkipReason,
    HandshakeRefused,
    HttpConnectionClosed,
    HttpConnectionOpened,
    HttpRequestDone,
    Observer,
    PingRoundTrip,
    WebSocketClosed,
    WebSocketOpened,
    WritesPaused,
)

__all__ = ["HTTP_DURATION_BUCKETS", "PING_RTT_BUCKETS", "MetricsObserver"]

PING_RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: a LAN pong takes well under a millisecond, a mobile one hundreds."""
HTTP_DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
"""Seconds from the request head to the last body byte written."""

SKIP_REASONS = {
    BroadcastSkipReason.NOT_OPEN: "not_open",
    BroadcastSkipReason.FRAGMENTED_SEND: "fragmented_send",
    BroadcastSkipReason.SLOW_READER: "slow_reader",
}


class MetricsObserver(Observer):
    """Counts what the server reports into metrics registered on `registry`.

    Under `PROMETHEUS_MULTIPROC_DIR` prometheus_client keeps the values in
    files shared by the processes; the open-connection gauge then sums the
    live processes (`livesum`), so a scrape of any one shows the total.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections_open = Gauge(
            "asgiws_connections_open",
            "Open connections by kind: http (accepted, until it ends or a WebSocket upgrade "
            "takes it over), websocket (from the 101 until the connection ends).",
            ["kind"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.handshakes = Counter(
            "asgiws_websocket_handshakes",
            "WebSocket opening handshakes by the status answered: 101, the refusal's status, "
            "or 0 when the connection was dropped without an answer.",
            ["status"],
            registry=registry,
        )
        self.messages = Counter(
            "asgiws_websocket_messages",
            "WebSocket messages by direction (in: received, out: sent); a connection's are "
            "added when it closes.",
            ["direction"],
            registry=registry,
        )
        self.payload_bytes = Counter(
            "asgiws_websocket_payload_bytes",
            "WebSocket message payload bytes by direction (after inflate on the way in, before "
            "deflate on the way out); a connection's are added when it closes.",
            ["direction"],
            registry=registry,
        )
        self.closes = Counter(
            "asgiws_websocket_closes",
            "Ended WebSocket connections by close code (as the app sees it in "
            "websocket.disconnect) and by the side whose close frame went first "
            "(local, peer, or nobody for 1006).",
            ["code", "closed_by"],
            registry=registry,
        )
        self.ping_rtt = Histogram(
            "asgiws_websocket_ping_rtt_seconds",
            "Round-trip time of WebSocket pings (keepalive and ping()) answered by a pong.",
            registry=registry,
            buckets=PING_RTT_BUCKETS,
        )
        self.http_requests = Counter(
            "asgiws_http_requests",
            "HTTP responses by status (500 for an app error; a response cut off by the client "
            "counts with the status it started with).",
            ["status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "asgiws_http_request_duration_seconds",
            "Seconds from an HTTP request's head to the last byte of its response.",
            registry=registry,
            buckets=HTTP_DURATION_BUCKETS,
        )
        self.paused_writes = Counter(
            "asgiws_websocket_writes_paused",
            "Times a WebSocket's outgoing buffer went above its write limit (the peer reads "
            "slower than the app sends): send() waits, broadcasts skip it.",
            registry=registry,
        )
        self.broadcast_skips = Counter(
            "asgiws_websocket_broadcast_skips",
            "Connections left out of one broadcast() message, by reason.",
            ["reason"],
            registry=registry,
        )
        # The series a dashboard expects from the first scrape, at 0; and the
        # children the hot paths use, looked up once.
        self._http_open = self.connections_open.labels("http")
        self._websocket_open = self.connections_open.labels("websocket")
        self._handshake_101 = self.handshakes.labels("101")
        self._messages_in = self.messages.labels("in")
        self._messages_out = self.messages.labels("out")
        self._bytes_in = self.payload_bytes.labels("in")
        self._bytes_out = self.payload_bytes.labels("out")
        self._skips = {
            reason: self.broadcast_skips.labels(name) for reason, name in SKIP_REASONS.items()
        }

    # --- HTTP ---------------------------------------------------------------------
    def http_connection_opened(self, event: HttpConnectionOpened) -> None:
        self._http_open.inc()

    def http_connection_closed(self, event: HttpConnectionClosed) -> None:
        self._http_open.dec()

    def http_request_done(self, event: HttpRequestDone) -> None:
        self.http_requests.labels(str(event.status)).inc()
        self.http_duration.observe(event.duration)

    # --- WebSocket ----------------------------------------------------------------
    def websocket_opened(self, event: WebSocketOpened) -> None:
        self._handshake_101.inc()
        self._websocket_open.inc()

    def handshake_refused(self, event: HandshakeRefused) -> None:
        self.handshakes.labels(str(event.status)).inc()

    def websocket_closed(self, event: WebSocketClosed) -> None:
        self._websocket_open.dec()
        self.closes.labels(str(event.code), event.closed_by.value).inc()
        self._messages_in.inc(event.messages_in)
        self._messages_out.inc(event.messages_out)
        self._bytes_in.inc(event.bytes_in)
        self._bytes_out.inc(event.bytes_out)

    def ping_round_trip(self, event: PingRoundTrip) -> None:
        self.ping_rtt.observe(event.latency)

    def writes_paused(self, event: WritesPaused) -> None:
        self.paused_writes.inc()

    def broadcast_skipped(self, event: BroadcastSkipped) -> None:
        self._skips[event.reason].inc()

