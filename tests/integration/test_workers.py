"""`--workers N` against the real CLI: a supervisor process binds once and
runs N worker processes; real clients (websockets, httpx) talk to it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServerProcess, StartServer

APP = "tests.apps:numbered"
WORKER_LINE = r"Started server process \[(\d+)\]"


def worker_pids(server: ServerProcess, count: int) -> list[int]:
    """The pids of the first `count` workers, once each has logged its start."""
    return [int(match[1]) for match in server.wait_for_logs(WORKER_LINE, count)]


def wait_until_serving(server: ServerProcess, count: int) -> None:
    """`count` workers (replacements included) have finished their application startup."""
    server.wait_for_logs("Application startup complete", count)


async def read_stream(ws: ClientConnection, received: list[int]) -> int:
    """Collect the numbered messages until the server closes; its close code."""
    try:
        async for message in ws:
            received.append(int(message))
    except ConnectionClosed:
        pass
    assert ws.close_code is not None
    return ws.close_code


async def test_sigterm_closes_50_websockets_with_1012_after_every_message(
    run_server: StartServer,
) -> None:
    server = run_server(APP, "--workers", "2", "--no-access-log")
    wait_until_serving(server, 2)
    clients = [await connect(f"{server.ws_url}/stream/{n}") for n in range(50)]
    pids = {int(await ws.recv()) for ws in clients}
    received: list[list[int]] = [[] for _ in clients]
    readers = [
        asyncio.create_task(read_stream(ws, got)) for ws, got in zip(clients, received, strict=True)
    ]
    # Mid-stream: every client has had messages before the signal.
    deadline = time.monotonic() + 10
    while not all(len(got) >= 3 for got in received):
        assert time.monotonic() < deadline, "streams did not start"
        await asyncio.sleep(0.02)
    server.send_signal(signal.SIGTERM)
    codes = await asyncio.wait_for(asyncio.gather(*readers), 15)
    assert await asyncio.to_thread(server.wait) == 0, server.logs()

    assert codes == [1012] * 50
    logs = server.logs()
    for n, got in enumerate(received):
        sent = int(re.search(rf"stream {n} sent (\d+)", logs)[1])  # type: ignore[index]
        # Every message the app handed to the server arrived, in order, none lost.
        assert got == list(range(1, sent + 1)), f"stream {n}: sent {sent}, got {got[-3:]}"
    assert pids <= set(worker_pids(server, 2))
    assert "Received SIGTERM, exiting." in logs
    assert re.search(r"Stopping parent process \[\d+\]", logs)


def test_killed_worker_is_replaced_and_serves(run_server: StartServer) -> None:
    server = run_server(APP, "--workers", "2", "--no-access-log")
    wait_until_serving(server, 2)
    first, second = worker_pids(server, 2)
    os.kill(first, signal.SIGKILL)
    server.wait_for_log(rf"Child process \[{first}\] died \(signal SIGKILL\); starting a new one")
    [replacement] = set(worker_pids(server, 3)) - {first, second}
    wait_until_serving(server, 3)
    # Both live workers share the socket: keep asking until the new one answers.
    seen: set[int] = set()
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for _ in range(200):
            response = client.get("/", headers={"connection": "close"})
            assert response.status_code == 200
            seen.add(int(response.text))
            if replacement in seen:
                break
    assert replacement in seen
    assert first not in seen
    assert seen <= {second, replacement}


def test_limit_max_requests_recycles_workers_without_a_failed_request(
    run_server: StartServer,
) -> None:
    limit = 25
    server = run_server(APP, "--workers", "2", "--limit-max-requests", str(limit),
                        "--no-access-log")
    wait_until_serving(server, 2)
    failures: list[str] = []
    answered: list[int] = []

    def client_loop() -> None:
        # A new connection per request: each one lands on whichever worker accepts.
        with httpx.Client(
            base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
        ) as client:
            for _ in range(60):
                try:
                    response = client.get("/")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"status {response.status_code}")
                else:
                    answered.append(int(response.text))

    threads = [threading.Thread(target=client_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(answered) == 120
    logs = server.logs()
    # 120 requests, 25 a worker: at least three workers were recycled and replaced.
    assert logs.count(f"Maximum request limit of {limit} exceeded") >= 3, logs
    assert len(re.findall(r"Child process \[\d+\] exited; starting a new one", logs)) >= 3
    assert len(set(answered)) >= 4
    # A worker past its limit still answers what it had accepted: at most one
    # request of each client in flight.
    assert max(answered.count(pid) for pid in set(answered)) <= limit + len(threads)


def test_scrape_sums_every_worker(run_server: StartServer) -> None:
    server = run_server(APP, "--workers", "2", "--metrics", "--no-access-log")
    wait_until_serving(server, 2)
    per_worker: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for _ in range(400):
            response = client.get("/", headers={"connection": "close"})
            assert response.status_code == 200
            pid = int(response.text)
            per_worker[pid] = per_worker.get(pid, 0) + 1
            if len(per_worker) == 2 and min(per_worker.values()) >= 3:
                break
        assert len(per_worker) == 2, "one worker took every connection"
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    total = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
        if sample.name == "asgiws_http_requests_total"
    }
    # One scrape, served by one worker, counts what both answered.
    assert total == {"200": sum(per_worker.values())}


def test_worker_that_cannot_start_stops_the_supervisor_with_its_exit_code() -> None:
    server = ServerProcess("tests.apps:no_such_app", ("--workers", "2"), None)
    assert server.wait(20) == 2
    logs = server.logs()
    assert "attribute 'no_such_app' not found in module 'tests.apps'" in logs
    assert re.search(
        r"Child process \[\d+\] failed to start \(exit code 2\); stopping the parent process",
        logs,
    )
