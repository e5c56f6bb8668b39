"""Attacks on the real CLI, each measured: the figures are printed in every
run (past pytest's capture) and asserted.

Clients are raw sockets speaking RFC 6455 with asgiws' own frame encoder,
so an attack can send exactly the bytes it needs (a deflate bomb, pings
never answered) at a rate no well-behaved client library would.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from asgiws.websocket.frames import BINARY, CLOSE, PING, encode_frame
from tests.conftest import REPO_ROOT, ServerProcess

APP = "tests.security.apps:recorder"
MASK = b"\x11\x22\x33\x44"
MiB = 2**20


def rss(pid: int) -> int:
    """Resident set size of process `pid`, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@contextmanager
def peak_rss(pid: int) -> Iterator[Callable[[], int]]:
    """Sample the server's RSS every 5 ms while the block runs; yields a
    function returning the highest value seen."""
    peak = [rss(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        thread.join(timeout=5)


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():  # figures belong in every run's output, CI's included
        print(f"\n[attack figures] {line}")


def settled_rss(pid: int, timeout: float = 5.0) -> int:
    """RSS once it stops moving (two samples 200 ms apart within 1%)."""
    deadline = time.monotonic() + timeout
    previous = rss(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = rss(pid)
        if abs(current - previous) <= previous // 100:
            return current
        previous = current
    return previous


# --- a raw WebSocket client ----------------------------------------------------------


async def ws_open(
    port: int, *, deflate: bool = False, path: str = "/ws"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    extensions = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b""
    writer.write(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extensions + b"\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 101"), head
    if deflate:
        assert b"permessage-deflate" in head.lower(), head
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


async def read_close_code(reader: asyncio.StreamReader) -> int:
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == CLOSE:
            return int.from_bytes(payload[:2], "big")


def frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    return b"".join(encode_frame(opcode, payload, rsv1=rsv1, mask=MASK))


# --- the attacks ---------------------------------------------------------------------


def test_deflate_bomb_costs_no_more_than_max_size(
    run_server: Callable[..., ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    """20 clients each send 64 MiB of zeros compressed to ~64 KiB: each is
    refused with 1009 once 1 MiB (--ws-max-size) is inflated."""
    clients, bomb_size, max_size = 20, 64 * MiB, MiB
    server = run_server(APP, "--ws-max-size", str(max_size))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = (compressor.compress(bytes(bomb_size)) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    bomb = frame(BINARY, payload, rsv1=True)
    pid = server.process.pid
    before = settled_rss(pid)

    async def attack() -> list[int]:
        async def one() -> int:
            reader, writer = await ws_open(server.port, deflate=True)
            writer.write(bomb)
            code = await asyncio.wait_for(read_close_code(reader), 30)
            writer.close()
            return code

        return await asyncio.gather(*(one() for _ in range(clients)))

    started = time.monotonic()
    with peak_rss(pid) as peak:
        codes = asyncio.run(attack())
    elapsed = time.monotonic() - started
    growth = peak() - before
    report(
        capsys,
        f"deflate bomb: {clients} x {bomb_size // MiB} MiB inflated ({len(payload) // 1024} KiB "
        f"on the wire), --ws-max-size {max_size // MiB} MiB: peak RSS growth "
        f"{growth / MiB:.1f} MiB, all refused with {sorted(set(codes))} in {elapsed:.2f}s",
    )
    assert codes == [1009] * clients
    # Each connection may hold one max_size buffer (plus zlib's window):
    # nowhere near the 1.28 GiB the bombs would inflate to.
    assert growth < clients * 2 * max_size + 16 * MiB


def test_a_thousand_clients_sending_max_size_messages_at_once(
    run_server: Callable[..., ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    clients, max_size = 1000, 64 * 1024
    server = run_server(APP, "--ws-max-size", str(max_size), "--ws-ping-interval", "0")
    pid = server.process.pid
    message = frame(BINARY, os.urandom(max_size))
    too_big = frame(BINARY, os.urandom(max_size + 1))

    async def attack() -> tuple[int, list[int], int]:
        opened = await asyncio.gather(*(ws_open(server.port) for _ in range(clients)))
        baseline = settled_rss(pid)
        for _, writer in opened:
            writer.write(message)
        echoed = await asyncio.gather(*(read_frame(r) for r, _ in opened))
        assert all(len(payload) == max_size for _, payload in echoed)
        # and one byte more is refused from the frame header, before buffering
        for _, writer in opened[:100]:
            writer.write(too_big)
        codes = await asyncio.gather(*(read_close_code(r) for r, _ in opened[:100]))
        for _, writer in opened:
            writer.close()
        return baseline, codes, len(echoed)

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    with peak_rss(pid) as peak:
        baseline, codes, echoed = asyncio.run(attack())
    elapsed = time.monotonic() - started
    growth = peak() - baseline
    report(
        capsys,
        f"{clients} clients x {max_size // 1024} KiB messages at once: {echoed} echoed, "
        f"peak RSS growth {growth / MiB:.1f} MiB ({growth / clients / 1024:.0f} KiB per client, "
        f"{growth / clients / max_size:.1f}x the message), 100 oversize refused with "
        f"{sorted(set(codes))}, {elapsed:.1f}s",
    )
    assert codes == [1009] * 100
    # receive buffer + message + echo in flight: a few messages per client at most
    assert growth < clients * 4 * max_size


def test_health_latency_under_slowloris_and_ping_flood(
    run_server: Callable[..., ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    slow_clients, flooders, samples = 500, 4, 200
    server = run_server(APP, "--timeout-keep-alive", "30")
    attackers = subprocess.Popen(
        [sys.executable, "-m", "tests.security.attackers", str(server.port),
         str(slow_clients), str(flooders), "20"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert attackers.stdout is not None
        assert attackers.stdout.readline().strip() == "ready"
        latencies, timeouts = [], 0
        for _ in range(samples):
            started = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                    response = b""
                    while chunk := sock.recv(65536):
                        response += chunk
                assert response.startswith(b"HTTP/1.1 200"), response[:100]
            except TimeoutError:
                timeouts += 1  # counted at the 5 s it waited
            latencies.append(time.perf_counter() - started)
        attackers.terminate()
        attackers.wait(timeout=10)
        still_open = server.process.poll() is None
    finally:
        if attackers.poll() is None:
            attackers.kill()
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    report(
        capsys,
        f"/health under {slow_clients} slowloris connections and {flooders} ping floods: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {samples} requests ({timeouts} timed out "
        "at 5 s)",
    )
    assert still_open
    # A flooding peer gets a bounded share of each loop turn (EVENTS_PER_TURN):
    # the typical health check waits a few short turns, not a read's worth of
    # pings (p50 ~100 ms with 1,024 events and 8 KiB slices, ~20 ms now).
    assert p50 < 50
    assert p99 < 250


def test_memory_per_idle_websocket_at_ten_thousand(
    run_server: Callable[..., ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    total = 10_000
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < total + 200:
        pytest.fail(f"the fd hard limit ({hard}) is below {total + 200}: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The server inherits the raised limit from this process.
    server = run_server(APP, "--ws-ping-interval", "0", "--backlog", "4096", "--no-access-log")
    pid = server.process.pid

    async def attack() -> tuple[int, int, float]:
        warm = [await ws_open(server.port) for _ in range(20)]
        baseline = settled_rss(pid)
        started = time.monotonic()
        opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for start in range(0, total - len(warm), 500):
            batch = min(500, total - len(warm) - start)
            opened += await asyncio.gather(*(ws_open(server.port) for _ in range(batch)))
        elapsed = time.monotonic() - started
        full = settled_rss(pid)
        for _, writer in warm + opened:
            writer.close()
        return baseline, full, elapsed

    baseline, full, elapsed = asyncio.run(attack())
    per_connection = (full - baseline) / (total - 20)
    report(
        capsys,
        f"{total} idle WebSockets: server RSS {baseline / MiB:.1f} -> {full / MiB:.1f} MiB, "
        f"{per_connection / 1024:.1f} KiB per connection (opened in {elapsed:.1f}s)",
    )
    assert per_connection < 24 * 1024


def test_half_open_connection_is_cut_by_the_ping_timeout(
    run_server: Callable[..., ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    """A peer that vanished without a FIN (simulated: it never answers a
    ping, never reads our close) is dropped after ping interval + ping
    timeout + close timeout."""
    interval, timeout, close_timeout = 1.0, 1.0, 1.0
    server = run_server(
        APP,
        "--ws-ping-interval", str(interval),
        "--ws-ping-timeout", str(timeout),
        "--ws-close-timeout", str(close_timeout),
    )  # fmt: skip

    async def attack() -> tuple[float, int, int]:
        reader, writer = await ws_open(server.port)
        started = time.monotonic()
        pings = 0
        code = 0
        while True:
            try:
                opcode, payload = await asyncio.wait_for(read_frame(reader), 30)
            except asyncio.IncompleteReadError:
                break  # the server dropped the connection
            if opcode == PING:
                pings += 1
            elif opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big")
        writer.close()
        return time.monotonic() - started, pings, code

    cut, pings, code = asyncio.run(attack())
    report(
        capsys,
        f"half-open peer: cut after {cut:.2f}s (ping interval {interval}s + timeout "
        f"{timeout}s + close timeout {close_timeout}s), {pings} ping(s), close code {code}",
    )
    assert code == 1011
    # (the timers run on the server's clock: 50 ms either way is scheduling)
    assert interval + timeout - 0.05 <= cut < interval + timeout + close_timeout + 1.0
