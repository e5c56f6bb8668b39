"""`--metrics` against the real CLI: the scrape is parsed with
prometheus_client's own text parser and every counter is checked against the
traffic the test made."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import ServerProcess, StartServer

APP = "tests.integration.ops_apps:app"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(url: str, check: Callable[[Samples], bool], timeout: float = 10.0) -> Samples:
    """Scrape until `check` holds (a connection's end is reported when the
    server notices it); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def metrics_url(server: ServerProcess) -> str:
    match = server.wait_for_log(r"Metrics served at (http://\S+)")
    return match[1]


async def test_counters_match_the_traffic(run_server: StartServer) -> None:
    server = run_server(APP, "--metrics", "--metrics-port", "0", "--ws-ping-interval", "0.05")
    url = metrics_url(server)
    before = scrape(url)
    assert value(before, "asgiws_connections_open", kind="http") == 0
    assert value(before, "asgiws_websocket_handshakes_total", status="101") == 0

    with httpx.Client(base_url=server.url, timeout=5) as client:
        for status in (200, 200, 200, 404, 404, 503):
            assert client.get("/", params={"status": status}).status_code == status
        # The keep-alive connection is still open: one HTTP connection.
        during = scrape(url)
        assert value(during, "asgiws_connections_open", kind="http") == 1

    async with connect(server.ws_url + "/echo") as ws:
        for text in ("hello", "wörld", ""):
            await ws.send(text)
            assert await ws.recv() == text
        await ws.send(b"\x00" * 1000)
        await ws.recv()
        open_now = scrape(url)
        assert value(open_now, "asgiws_connections_open", kind="websocket") == 1
        # Keepalive pings every 50 ms: wait (off the event loop, which the
        # client needs to answer them) for one answered.
        await asyncio.to_thread(
            wait_for, url, lambda s: value(s, "asgiws_websocket_ping_rtt_seconds_count") >= 1
        )
    for _ in range(2):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.ws_url + "/deny"):
                pass
        assert refused.value.response.status_code == 403

    samples = wait_for(
        url,
        lambda s: value(s, "asgiws_connections_open", kind="websocket") == 0
        and value(s, "asgiws_connections_open", kind="http") == 0,
    )
    assert value(samples, "asgiws_connections_open", kind="http") == 0
    assert value(samples, "asgiws_connections_open", kind="websocket") == 0
    assert value(samples, "asgiws_http_requests_total", status="200") == 3
    assert value(samples, "asgiws_http_requests_total", status="404") == 2
    assert value(samples, "asgiws_http_requests_total", status="503") == 1
    assert value(samples, "asgiws_http_request_duration_seconds_count") == 6
    assert value(samples, "asgiws_websocket_handshakes_total", status="101") == 1
    assert value(samples, "asgiws_websocket_handshakes_total", status="403") == 2
    # "wörld" is 6 bytes in UTF-8; the empty message counts as a message.
    payload = 5 + 6 + 0 + 1000
    assert value(samples, "asgiws_websocket_messages_total", direction="in") == 4
    assert value(samples, "asgiws_websocket_messages_total", direction="out") == 4
    assert value(samples, "asgiws_websocket_payload_bytes_total", direction="in") == payload
    assert value(samples, "asgiws_websocket_payload_bytes_total", direction="out") == payload
    assert value(samples, "asgiws_websocket_closes_total", code="1000", closed_by="peer") == 1
    assert value(samples, "asgiws_websocket_ping_rtt_seconds_count") >= 1
    assert value(samples, "asgiws_websocket_ping_rtt_seconds_bucket", le="+Inf") >= 1


async def test_writes_paused_and_broadcast_skips(run_server: StartServer) -> None:
    server = run_server(APP, "--metrics", "--metrics-port", "0", "--ws-write-limit", "1024")
    url = metrics_url(server)
    # A client that never reads: the server's writes pause.
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            b"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        samples = wait_for(url, lambda s: value(s, "asgiws_websocket_writes_paused_total") >= 1)
        assert value(samples, "asgiws_websocket_writes_paused_total") >= 1
    # The second /broadcast connection's broadcast skips the first, closed one.
    async with connect(server.ws_url + "/broadcast") as first:
        assert await first.recv() == "news"
    async with connect(server.ws_url + "/broadcast") as second:
        assert await second.recv() == "news"
    samples = scrape(url)
    assert value(samples, "asgiws_websocket_broadcast_skips_total", reason="not_open") == 1
    assert value(samples, "asgiws_websocket_broadcast_skips_total", reason="slow_reader") == 0


async def test_metrics_path_on_the_app_listener(run_server: StartServer) -> None:
    server = run_server(APP, "--metrics", "--metrics-path", "/internal/metrics")
    httpx.get(server.url + "/", params={"status": 201}, timeout=5)
    samples = scrape(server.url + "/internal/metrics")
    assert value(samples, "asgiws_http_requests_total", status="201") == 1
    # The path is the metrics endpoint's; every other path is still the app's.
    assert httpx.get(server.url + "/metrics", timeout=5).text == "status 200"
    # The scrape before is an HTTP request too, counted once it was answered.
    assert value(scrape(server.url + "/internal/metrics"), "asgiws_http_requests_total",
                 status="200") == 2


def test_multiprocess_directory_sums_processes(
    run_server: StartServer, tmp_path: object
) -> None:
    """Two processes sharing PROMETHEUS_MULTIPROC_DIR (how --workers will
    aggregate): a scrape of either shows the requests both served."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    one = run_server(APP, "--metrics", env=env)
    two = run_server(APP, "--metrics", env=env)
    for server, count in ((one, 2), (two, 3)):
        for _ in range(count):
            httpx.get(server.url + "/", params={"status": 202}, timeout=5)
    for server in (one, two):
        samples = scrape(server.url + "/metrics")
        assert value(samples, "asgiws_http_requests_total", status="202") == 5


def test_metrics_without_prometheus_client_is_one_line(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    # A module named prometheus_client that cannot be imported hides the real one.
    blocker = Path(str(tmp_path)) / "prometheus_client.py"
    blocker.write_text("raise ImportError('hidden for the test')\n")
    result = subprocess.run(
        [sys.executable, "-m", "asgiws", APP, "--metrics", "--port", "0"],
        env={"PYTHONPATH": f"{tmp_path}:{Path.cwd()}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "pip install 'asgiws[metrics]'" in result.stderr
    assert "Traceback" not in result.stderr
