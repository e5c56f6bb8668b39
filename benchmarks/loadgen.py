"""WebSocket load generator, run as its own process (pinned by run.py).

    python benchmarks/loadgen.py SCENARIO --port PORT [--duration S] [--warmup S]
                                 [--server-pid PID] [--quick] [--rate R [R ...]]

Prints one JSON object on stdout: the scenario's numbers plus `loadgen_cpu`,
this process's own CPU time (user+system, from getrusage) divided by the
measured wall time.  A value near 1.0 would mean the client, not the server,
is the limit; run.py reports it beside every result.

Flat out by default.  With --rate (the cost pass) a Pacer offers R units per
second in total, open-loop and bounded, and the output is `levels`: per rate
the achieved rate, whether it was saturated (below 95 % of R) and
`server_us_per_unit`, the server's CPU microseconds per completed unit.
http_hello is here for the paced mode (run.py uses wrk flat out): GET / on
keep-alive connections, responses framed by Content-Length.

The client is picows (C frame parser and masking) on uvloop.  picows has no
permessage-deflate, so ws_deflate_* do RFC 7692 themselves here with zlib on
top of picows' raw frames (RSV1 + Z_SYNC_FLUSH with the 00 00 ff ff tail
stripped), honouring the context-takeover and window parameters the server
answers with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import socket
import struct
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

# Run as a script, sys.path[0] is benchmarks/: the repository root goes first
# so that asgiws and benchmarks.* come from this checkout, as in run.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgiws.memory import tune_malloc

CONNECT_CONCURRENCY = 128
CONNECT_TIMEOUT = 10.0
DRAIN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 3.0
# Spread client sockets over many loopback source addresses so 10,000 idle
# connections plus handshake loops never run out of ephemeral ports.
SOURCE_ADDRESSES = tuple(f"127.0.0.{host}" for host in range(2, 66))
DATA_TYPES = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)
WHOLE_TYPES = (WSMsgType.TEXT, WSMsgType.BINARY)
SYNC_TAIL = b"\x00\x00\xff\xff"
COMPRESSIBLE_TEXT = (
    '{"user": "benchmark", "event": "update", "tags": ["alpha", "beta"], "value": 42}\n' * 13
)[:1024]


class ScenarioError(RuntimeError):
    """The server misbehaved or stalled: the scenario has no valid number."""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(slots=True)
class Window:
    """Counter sampled at the start and end of the measured interval."""

    count: int = 0
    measuring: bool = False
    running: bool = True
    # Paced (--rate): a Pacer decides when to send; a completed unit does not
    # send the next one by itself.
    paced: bool = False
    fired: int = 0  # paced: units the pacer handed out (completed ones are `count`)
    latencies_ns: list[int] = field(default_factory=list)


def server_cpu_seconds(pid: int | None) -> float:
    """On-CPU time of the server's process tree (0 when no pid was given).

    Summed per thread from /proc/PID/task/TID/schedstat (nanoseconds) where the
    kernel has it: /proc/PID/stat counts in clock ticks (10 ms), too coarse for
    a server that is 5 % busy over a 2 s window (the cost pass).
    """
    if pid is None:
        return 0.0
    from benchmarks.servers import tree_pids  # lazy: see rss_kib

    seconds = 0.0
    for member in tree_pids(pid):
        seconds += process_cpu_seconds(member)
    return seconds


def process_cpu_seconds(pid: int) -> float:
    """One process, all its live threads; 0 when it is gone."""
    try:
        if SCHEDSTAT:
            total = 0
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):  # a thread that just ended
                    total += int((task / "schedstat").read_text().split()[0])
            return total / 1e9
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the parenthesised command name; utime and stime are 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SCHEDSTAT = Path("/proc/self/schedstat").exists()


@dataclass(frozen=True, slots=True)
class Sample:
    count: int
    seconds: float
    cpu: float
    server_cpu: float
    fired: int = 0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def shares(self) -> dict[str, float]:
        """CPU use of both sides as a fraction of one core: who was the limit."""
        return {
            "loadgen_cpu": self.cpu / self.seconds,
            "server_cpu": self.server_cpu / self.seconds,
        }


SERVER_PID: int | None = None  # set from --server-pid by main()


async def measure(window: Window, warmup: float, duration: float) -> Sample:
    """Let traffic warm up, then count what happens during `duration`."""
    await asyncio.sleep(warmup)
    window.measuring = True
    count0, fired0, time0, cpu0 = window.count, window.fired, time.monotonic(), cpu_seconds()
    server0 = server_cpu_seconds(SERVER_PID)
    await asyncio.sleep(duration)
    count1, fired1, time1, cpu1 = window.count, window.fired, time.monotonic(), cpu_seconds()
    server1 = server_cpu_seconds(SERVER_PID)
    window.measuring = False
    return Sample(count1 - count0, time1 - time0, cpu1 - cpu0, server1 - server0, fired1 - fired0)


# ---------------------------------------------------------------- paced mode


PACE_TICK = 0.001  # seconds between the pacer's looks at the clock
PACE_LATE = 0.1  # seconds a due unit may wait for a free slot before it is missed
# Below this share of the offered rate, a level is "saturated": the server did
# not keep up, and its CPU per unit would describe an overloaded server.
SATURATION = 0.95
# Paced in-flight bound per slot, as a multiple of the throughput scenario's:
# arrivals are not synchronised with replies, so a slot needs some headroom
# below saturation; still bounded, so an overloaded server cannot be buried.
PACED_HEADROOM = 2


class Slot(Protocol):
    """Something the pacer can hand a unit of work to (a connection, a loop)."""

    def has_room(self) -> bool: ...

    def fire(self) -> None: ...


class Pacer:
    """Open-loop schedule: `rate` fires per second, round-robin over `slots`.

    Every PACE_TICK the pacer fires whatever the clock says is due since it
    started, to the next slots with room.  A unit that finds every slot at its
    in-flight bound waits for the next tick, at most PACE_LATE seconds; after
    that it is missed, not queued further: a server that falls behind shows
    as an achieved rate below the offered one, never as a growing backlog,
    while a short stall of either process only makes a few units late.
    """

    def __init__(self, rate: float, slots: list[Slot], window: Window) -> None:
        self.rate = rate
        self.slots = slots
        self.window = window
        self.running = True
        self.missed = 0
        self.late_limit = max(1, int(rate * PACE_LATE))  # units allowed to wait

    async def run(self) -> None:
        slots, count = self.slots, len(self.slots)
        started, issued, waiting, index = time.monotonic(), 0, 0, 0
        while self.running:
            await asyncio.sleep(PACE_TICK)
            due = int((time.monotonic() - started) * self.rate) - issued
            issued += due
            waiting += due
            while waiting:
                for _ in range(count):
                    slot = slots[index]
                    index = index + 1 if index + 1 < count else 0
                    if slot.has_room():
                        slot.fire()
                        self.window.fired += 1
                        waiting -= 1
                        break
                else:  # every slot is full: the rest waits for the next tick
                    break
            if waiting > self.late_limit:
                self.missed += waiting - self.late_limit
                waiting = self.late_limit


async def run_levels(
    window: Window,
    slots: list[Slot],
    args: argparse.Namespace,
    settle: Callable[[], Awaitable[None]],
    *,
    units_per_fire: int = 1,
) -> list[dict[str, Any]]:
    """One measurement per offered rate in `args.rate` (units/s), in order,
    on the same connections; `settle` waits until nothing is in flight (and
    raises if that takes too long: every unit handed out must complete)."""
    window.paced = True
    levels = []
    first_warmup = args.warmup if args.first_warmup is None else args.first_warmup
    for number, rate in enumerate(args.rate):
        pacer = Pacer(rate / units_per_fire, slots, window)
        window.latencies_ns.clear()
        task = asyncio.ensure_future(pacer.run())
        try:
            warmup = first_warmup if number == 0 else args.warmup
            sample = await measure(window, warmup, args.duration)
        finally:
            pacer.running = False
            await task
        await settle()
        levels.append(level_result(rate, sample, pacer.missed, units_per_fire))
        levels[-1]["warmup_s"] = warmup
        if window.latencies_ns:
            latencies = sorted(window.latencies_ns)
            levels[-1]["p99_ms"] = percentile(latencies, 99) / 1e6
    return levels


def level_result(
    offered: float, sample: Sample, missed: int, units_per_fire: int
) -> dict[str, Any]:
    """A paced level: achieved rate and server CPU microseconds per unit.

    `achieved` counts the units handed out during the window (all of them
    completed: run_levels settles first), so a stall of either process at the
    window's edge cannot make a server that keeps up look saturated; a server
    that does not keep up fills its in-flight bounds and the pacer misses
    units.  The CPU per unit divides the server's CPU time in the window by the
    units completed in the same window (`completed`).
    """
    achieved = sample.fired * units_per_fire / sample.seconds
    return {
        "offered": offered,
        "achieved": achieved,
        "completed": sample.rate,
        "units": sample.count,
        "missed": missed * units_per_fire,
        "saturated": achieved < SATURATION * offered,
        "server_cpu_s": sample.server_cpu,
        "server_us_per_unit": sample.server_cpu * 1e6 / sample.count if sample.count else None,
        **sample.shares(),
    }


class Connector:
    """Opens client connections from rotating loopback source addresses."""

    def __init__(self, port: int) -> None:
        self.base = f"ws://127.0.0.1:{port}"
        self._sources: Iterator[str] = itertools.cycle(SOURCE_ADDRESSES)

    async def open(
        self,
        path: str,
        factory: Callable[[], WSListener],
        *,
        extensions: str | None = None,
        read_buffer: int = 16 * 1024,
    ) -> tuple[WSTransport, WSListener]:
        headers = {"Sec-WebSocket-Extensions": extensions} if extensions else None
        transport, listener = await ws_connect(
            factory,
            self.base + path,
            websocket_handshake_timeout=CONNECT_TIMEOUT,
            max_frame_size=8 * 1024 * 1024,
            extra_headers=headers,
            read_buffer_init_size=read_buffer,
            local_addr=(next(self._sources), 0),
        )
        # Small frames (triggers, 64-byte deliveries) must not wait for Nagle.
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return transport, listener

    async def open_many(
        self, count: int, opener: Callable[[], Awaitable[tuple[WSTransport, WSListener]]]
    ) -> list[tuple[WSTransport, WSListener]]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> tuple[WSTransport, WSListener]:
            async with gate:
                return await asyncio.wait_for(opener(), CONNECT_TIMEOUT)

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(transports: list[WSTransport]) -> None:
    async def close(transport: WSTransport) -> None:
        if transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            transport.disconnect(graceful=False)

    await asyncio.gather(*(close(t) for t in transports))


class Client(WSListener):
    """Base listener: completes the close handshake and reassembles messages."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []
        self.compressed = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind in DATA_TYPES:
            if kind != WSMsgType.CONTINUATION:
                self.compressed = frame.rsv1
            if not frame.fin:
                self.parts.append(frame.get_payload_as_bytes())
                return
            if self.parts:
                self.parts.append(frame.get_payload_as_bytes())
                payload = b"".join(self.parts)
                self.parts.clear()
                self.on_message(transport, payload, self.compressed)
            else:
                self.on_message(transport, frame.get_payload_as_bytes(), self.compressed)
        elif kind == WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_message(self, transport: WSTransport, payload: bytes, compressed: bool) -> None:
        pass


# ---------------------------------------------------------------- echo


class EchoClient(Client):
    """Keeps `in_flight` copies of one message bouncing off the echo route.

    Paced (window.paced), it sends only when the Pacer fires it, with at most
    PACED_HEADROOM * in_flight echoes outstanding.
    """

    def __init__(self, window: Window, kind: WSMsgType, payload: bytes, in_flight: int):
        super().__init__()
        self.window = window
        self.kind = kind
        self.payload = payload
        self.in_flight = in_flight
        self.outstanding = 0
        self.wrong = 0
        self.transport: WSTransport | None = None

    def start(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.window.paced:
            return
        for _ in range(self.in_flight):
            self.send(transport)

    def has_room(self) -> bool:
        return self.outstanding < self.in_flight * PACED_HEADROOM

    def fire(self) -> None:
        assert self.transport is not None
        self.send(self.transport)

    def send(self, transport: WSTransport) -> None:
        self.outstanding += 1
        transport.send(self.kind, self.payload)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # Hot path, kept flat so the client stays far below one core: a whole
        # unfragmented data frame is checked by size without copying its payload.
        if frame.fin and not self.parts and frame.msg_type in WHOLE_TYPES:
            self.arrived(transport, frame.payload_size)
        else:
            super().on_ws_frame(transport, frame)

    def on_message(self, transport: WSTransport, payload: bytes, compressed: bool) -> None:
        self.arrived(transport, len(payload))

    def arrived(self, transport: WSTransport, size: int) -> None:
        self.outstanding -= 1
        if size != len(self.payload):
            self.wrong += 1
        window = self.window
        window.count += 1
        if window.running and not window.paced:
            self.send(transport)


class Outstanding(Protocol):
    outstanding: int  # units sent and not answered yet


async def drain(clients: Sequence[Outstanding], what: str = "echoes") -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while any(c.outstanding > 0 for c in clients):
        if time.monotonic() > deadline:
            raise ScenarioError(f"{what} still missing after the run stopped")
        await asyncio.sleep(0.05)


async def run_echo(
    connector: Connector,
    args: argparse.Namespace,
    *,
    connections: int,
    in_flight: int,
    kind: WSMsgType,
    payload: bytes,
    client_type: type[EchoClient] = EchoClient,
    extensions: str | None = None,
    unit: str = "msg/s",
    bytes_per_unit: int | None = None,
) -> dict[str, Any]:
    """Echo traffic: closed loop (throughput), or paced levels with --rate.

    With `bytes_per_unit` the throughput value is MB/s (10^6 bytes) and the
    message rate is kept as `msg_per_s`; paced levels always count messages.
    """
    window = Window(paced=args.rate is not None)
    pairs = await connector.open_many(
        connections,
        lambda: connector.open(
            "/echo",
            lambda: client_type(window, kind, payload, in_flight),
            extensions=extensions,
        ),
    )
    transports = [t for t, _ in pairs]
    clients = [c for _, c in pairs if isinstance(c, EchoClient)]
    try:
        for transport, client in zip(transports, clients, strict=True):
            client.start(transport)
        if window.paced:
            levels = await run_levels(window, list(clients), args, lambda: drain(clients))
        else:
            sample = await measure(window, args.warmup, args.duration)
        window.running = False
        await drain(clients)
    finally:
        await close_all(transports)
    if any(c.wrong for c in clients):
        raise ScenarioError("echo payload size mismatch")
    if window.paced:
        return {"levels": levels, "unit": "msg/s"}
    if bytes_per_unit is None:
        return {"value": sample.rate, "unit": unit, **sample.shares()}
    return {
        "value": sample.rate * bytes_per_unit / 1e6,
        "unit": unit,
        "msg_per_s": sample.rate,
        **sample.shares(),
    }


async def ws_echo_small(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    return await run_echo(
        connector, args, connections=64, in_flight=8, kind=WSMsgType.TEXT, payload=b"x" * 32
    )


async def ws_echo_1k(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    return await run_echo(
        connector,
        args,
        connections=64,
        in_flight=1,
        kind=WSMsgType.BINARY,
        payload=os.urandom(1024),
    )


async def ws_echo_1m(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    size = 1024 * 1024
    return await run_echo(
        connector,
        args,
        connections=4,
        in_flight=1,
        kind=WSMsgType.BINARY,
        payload=os.urandom(size),
        unit="MB/s",
        bytes_per_unit=size,
    )


# ---------------------------------------------------------------- deflate


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """What the server's Sec-WebSocket-Extensions answer agreed to."""

    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    client_max_window_bits: int = 15

    @classmethod
    def parse(cls, header: str) -> DeflateParams | None:
        for offer in header.split(","):
            name, *params = (part.strip() for part in offer.split(";"))
            if name != "permessage-deflate":
                continue
            values = dict(
                (key.strip(), value.strip().strip('"'))
                for key, _, value in (p.partition("=") for p in params if p)
            )
            return cls(
                client_no_context_takeover="client_no_context_takeover" in values,
                server_no_context_takeover="server_no_context_takeover" in values,
                client_max_window_bits=int(values.get("client_max_window_bits") or 15),
            )
        return None


class DeflateEchoClient(EchoClient):
    """EchoClient speaking permessage-deflate with zlib on picows frames."""

    params = DeflateParams()
    # Compressed payloads must be read and inflated: no size-only fast path.
    on_ws_frame = Client.on_ws_frame

    def configure(self, params: DeflateParams) -> None:
        self.params = params
        self.compressor = self.new_compressor()
        self.decompressor = zlib.decompressobj(-15)

    def new_compressor(self) -> Any:
        # Level 1 and memLevel 5 (websockets' client setting) keep client CPU
        # low; the server's work barely depends on them.  At memLevel 8 the
        # 64 KiB hash table is swept each time the window slides: every fourth
        # message with the 12-bit window servers ask for, which made this
        # client, not the server, the limit of the fastest server.
        return zlib.compressobj(1, zlib.DEFLATED, -max(9, self.params.client_max_window_bits), 5)

    def send(self, transport: WSTransport) -> None:
        if self.params.client_no_context_takeover:
            self.compressor = self.new_compressor()
        data = self.compressor.compress(self.payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        self.outstanding += 1
        transport.send(self.kind, data[:-4], rsv1=True)

    def on_message(self, transport: WSTransport, payload: bytes, compressed: bool) -> None:
        if compressed:
            if self.params.server_no_context_takeover:
                self.decompressor = zlib.decompressobj(-15)
            payload = self.decompressor.decompress(payload + SYNC_TAIL)
        super().on_message(transport, payload, compressed)


class ConfiguredDeflateClient(DeflateEchoClient):
    """Reads the negotiated parameters before the first message is sent."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        header = ",".join(transport.response.headers.getall("Sec-WebSocket-Extensions", []))
        params = DeflateParams.parse(header)
        if params is None:
            raise ScenarioError("server did not negotiate permessage-deflate")
        self.configure(params)


async def ws_deflate(
    connector: Connector, args: argparse.Namespace, *, enabled: bool
) -> dict[str, Any]:
    payload = COMPRESSIBLE_TEXT.encode()
    if not enabled:
        return await run_echo(
            connector, args, connections=64, in_flight=1, kind=WSMsgType.TEXT, payload=payload
        )
    probe, _ = await connector.open(
        "/echo", Client, extensions="permessage-deflate; client_max_window_bits"
    )
    answer = ",".join(probe.response.headers.getall("Sec-WebSocket-Extensions", []))
    await close_all([probe])
    if DeflateParams.parse(answer) is None:
        return {"value": None, "unit": "msg/s", "note": "server does not negotiate deflate"}
    result = await run_echo(
        connector,
        args,
        connections=64,
        in_flight=1,
        kind=WSMsgType.TEXT,
        payload=payload,
        client_type=ConfiguredDeflateClient,
        extensions="permessage-deflate; client_max_window_bits",
    )
    return {**result, "negotiated": answer}


async def ws_deflate_on(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    return await ws_deflate(connector, args, enabled=True)


async def ws_deflate_off(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    return await ws_deflate(connector, args, enabled=False)


# ---------------------------------------------------------------- handshake


# A fixed key is fine: the server's accept value is not what is measured, and
# picows' general-purpose ws_connect (URL parsing, proxy support) costs more
# client CPU per connection than the servers spend, so handshakes use this
# minimal protocol instead.
HANDSHAKE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
# A masked client close frame, code 1000, mask 0x00000000 (valid: any key is).
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"


class HandshakeProtocol(asyncio.Protocol):
    """Upgrade, send close, wait for the server's close frame, drop the socket."""

    def __init__(self, request: bytes, done: asyncio.Future[bool]) -> None:
        self.request = request
        self.done = done
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is not an asyncio.Transport subclass, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.finish(False)
                return
            self.upgraded = True
            self.buffer = self.buffer[end + 4 :]
            self.transport.write(CLOSE_FRAME)
        if self.buffer[:1] == b"\x88":
            self.finish(True)

    def finish(self, ok: bool) -> None:
        assert self.transport is not None
        self.transport.close()
        if not self.done.done():
            self.done.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(False)


HANDSHAKE_LOOPS = 16  # concurrent handshakes in the throughput scenario


class Handshakes:
    """Runs handshakes, counts successes in `window`, gives up on many failures."""

    def __init__(self, window: Window, port: int, limit: int) -> None:
        self.window = window
        self.port = port
        self.limit = limit  # paced: most handshakes in flight at once
        self.in_flight = 0
        self.failures: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.sources = itertools.cycle(SOURCE_ADDRESSES)
        self.request = (
            f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {HANDSHAKE_KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    async def once(self) -> None:
        """One handshake, counted or recorded as a failure."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: HandshakeProtocol(self.request, done),
                    "127.0.0.1",
                    self.port,
                    local_addr=(next(self.sources), 0),
                ),
                CONNECT_TIMEOUT,
            )
            ok = await asyncio.wait_for(done, CONNECT_TIMEOUT)
            reason = "no 101 or no close frame"
        except (OSError, asyncio.TimeoutError) as exc:
            ok, reason = False, repr(exc)
        if ok:
            self.window.count += 1
            return
        self.failures.append(reason)
        if len(self.failures) > 100:
            raise ScenarioError(f"handshakes failing: {reason}")

    async def loop(self) -> None:
        """Closed loop: the next handshake as soon as one ends."""
        while self.window.running:
            await self.once()

    def has_room(self) -> bool:
        return self.in_flight < self.limit

    def fire(self) -> None:
        # Counted here, not when the task first runs: the pacer asks has_room()
        # again before any task of this tick has started.
        self.in_flight += 1
        task = asyncio.ensure_future(self.once())
        self.tasks.add(task)
        task.add_done_callback(self.finished)

    def finished(self, task: asyncio.Task[None]) -> None:
        self.in_flight -= 1
        self.tasks.discard(task)

    async def settle(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks)


async def ws_handshake(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    window = Window(paced=args.rate is not None)
    handshakes = Handshakes(window, args.port, HANDSHAKE_LOOPS * PACED_HEADROOM * 2)
    if window.paced:
        levels = await run_levels(window, [handshakes], args, handshakes.settle)
        return {"levels": levels, "unit": "handshakes/s", "failures": len(handshakes.failures)}
    loops = [asyncio.ensure_future(handshakes.loop()) for _ in range(HANDSHAKE_LOOPS)]
    try:
        sample = await measure(window, args.warmup, args.duration)
    finally:
        window.running = False
        await asyncio.wait_for(asyncio.gather(*loops), 2 * CONNECT_TIMEOUT + 1)
    return {
        "value": sample.rate,
        "unit": "handshakes/s",
        "failures": len(handshakes.failures),
        **sample.shares(),
    }


# ---------------------------------------------------------------- idle RSS


def rss_kib(pid: int) -> int:
    # Imported lazily so the load generator also runs without the harness package.
    from benchmarks.servers import tree_rss_kib

    return tree_rss_kib(pid)


async def settled_rss(pid: int) -> int:
    """RSS once it stops moving (the server may still be finishing handshakes)."""
    previous = rss_kib(pid)
    for _ in range(20):
        await asyncio.sleep(0.25)
        current = rss_kib(pid)
        if abs(current - previous) <= max(64, previous // 500):
            return current
        previous = current
    return previous


async def ws_idle_rss(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    if args.server_pid is None:
        raise ScenarioError("ws_idle_rss needs --server-pid")
    steps = (200, 1000) if args.quick else (2000, 10000)
    window = Window()
    # Each idle connection does one echo so we know the app accepted it.
    payload = b"hi"

    async def idle() -> tuple[WSTransport, WSListener]:
        transport, client = await connector.open(
            "/echo", lambda: EchoClient(window, WSMsgType.BINARY, payload, 1), read_buffer=256
        )
        assert isinstance(client, EchoClient)
        client.start(transport)
        return transport, client

    # Warm the server (imports, first-connection caches) before the baseline.
    warm = await connector.open_many(20, idle)
    window.running = False
    await drain([c for _, c in warm if isinstance(c, EchoClient)])
    await close_all([t for t, _ in warm])
    baseline = await settled_rss(args.server_pid)

    result: dict[str, Any] = {"unit": "KiB/conn", "baseline_kib": baseline}
    transports: list[WSTransport] = []
    clients: list[EchoClient] = []
    started = time.monotonic()
    cpu0 = cpu_seconds()
    try:
        for total in steps:
            pairs = await connector.open_many(total - len(transports), idle)
            transports.extend(t for t, _ in pairs)
            clients.extend(c for _, c in pairs if isinstance(c, EchoClient))
            await drain(clients)
            rss = await settled_rss(args.server_pid)
            result[f"kib_per_conn_{total}"] = (rss - baseline) / total
            result[f"rss_kib_{total}"] = rss
    finally:
        await close_all(transports)
    result["value"] = result[f"kib_per_conn_{steps[-1]}"]
    result["loadgen_cpu"] = (cpu_seconds() - cpu0) / (time.monotonic() - started)
    return result


# ---------------------------------------------------------------- broadcast


BROADCAST_SIZE = 64
_UNPACK_TRIGGER = struct.Struct(">QQ").unpack_from  # (sequence, send time in ns)
TRIGGERS_IN_FLIGHT = 4


class Subscriber(Client):
    def __init__(self, hub: BroadcastHub) -> None:
        super().__init__()
        self.hub = hub

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # Hot path (1,000 subscribers): the header is read from picows' buffer
        # in place, so the client stays below one core as long as it can.
        if frame.fin and frame.msg_type == WSMsgType.BINARY:
            self.hub.delivered(frame.get_payload_as_memoryview())
        else:
            super().on_ws_frame(transport, frame)

    def on_message(self, transport: WSTransport, payload: bytes, compressed: bool) -> None:
        self.hub.delivered(payload)


class Controller(Client):
    def __init__(self) -> None:
        super().__init__()
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def on_message(self, transport: WSTransport, payload: bytes, compressed: bool) -> None:
        self.replies.put_nowait(payload)


class BroadcastHub:
    """Sends triggers, keeps TRIGGERS_IN_FLIGHT fan-outs going, records latency."""

    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.window = Window()
        self.pending: dict[int, int] = {}
        self.sequence = itertools.count()
        self.control: WSTransport | None = None
        self.last_progress = time.monotonic()

    def trigger(self) -> None:
        assert self.control is not None
        seq = next(self.sequence)
        self.pending[seq] = self.subscribers
        head = struct.pack(">QQ", seq, time.monotonic_ns())
        self.control.send(WSMsgType.BINARY, head.ljust(BROADCAST_SIZE, b"."))

    def delivered(self, payload: bytes | memoryview) -> None:
        seq, sent_ns = _UNPACK_TRIGGER(payload)
        window = self.window
        window.count += 1
        if window.measuring:
            window.latencies_ns.append(time.monotonic_ns() - sent_ns)
        pending = self.pending
        left = pending[seq] - 1
        if left:
            pending[seq] = left
            return
        # A whole fan-out arrived: that is the progress the stall check needs.
        self.last_progress = time.monotonic()
        del pending[seq]
        if window.running and not window.paced:
            self.trigger()

    def has_room(self) -> bool:
        return len(self.pending) < TRIGGERS_IN_FLIGHT * PACED_HEADROOM

    def fire(self) -> None:
        if not self.pending:  # idle between paced triggers is not a stall
            self.last_progress = time.monotonic()
        self.trigger()

    async def settle(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


async def ws_broadcast(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    count = 200 if args.quick else 1000
    group = f"g{os.getpid()}-{time.monotonic_ns()}"
    hub = BroadcastHub(count)
    hub.window.paced = args.rate is not None
    pairs = await connector.open_many(
        count,
        lambda: connector.open(
            f"/broadcast?group={group}", lambda: Subscriber(hub), read_buffer=1024
        ),
    )
    transports = [t for t, _ in pairs]
    control, controller = await connector.open(f"/broadcast/control?group={group}", Controller)
    assert isinstance(controller, Controller)
    transports.append(control)
    hub.control = control
    try:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            control.send(WSMsgType.TEXT, b"count")
            registered = int(await asyncio.wait_for(controller.replies.get(), CONNECT_TIMEOUT))
            if registered >= count:
                break
            if time.monotonic() > deadline:
                raise ScenarioError(f"only {registered}/{count} subscribers registered")
            await asyncio.sleep(0.05)
        watchdog = asyncio.ensure_future(stall_watch(hub))
        try:
            if hub.window.paced:
                levels = await run_levels(hub.window, [hub], args, hub.settle, units_per_fire=count)
            else:
                for _ in range(TRIGGERS_IN_FLIGHT):
                    hub.trigger()
                sample = await measure(hub.window, args.warmup, args.duration)
            hub.window.running = False
            await hub.settle()
        finally:
            watchdog.cancel()
        if watchdog.done() and not watchdog.cancelled() and watchdog.exception():
            raise ScenarioError("broadcast stalled")
        if hub.pending:
            raise ScenarioError(f"{len(hub.pending)} fan-outs never completed")
    finally:
        await close_all(transports)
    if hub.window.paced:
        return {"levels": levels, "unit": "deliveries/s", "subscribers": count}
    latencies = sorted(hub.window.latencies_ns)
    return {
        "value": sample.rate,
        "unit": "deliveries/s",
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
        "subscribers": count,
        **sample.shares(),
    }


async def stall_watch(hub: BroadcastHub) -> None:
    while hub.window.running:
        await asyncio.sleep(0.5)
        if hub.pending and time.monotonic() - hub.last_progress > 5.0:
            raise ScenarioError("no broadcast fan-out completed for 5 s")


def percentile(sorted_values: list[int], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))
    return float(sorted_values[index])


# ---------------------------------------------------------------- HTTP keep-alive


HTTP_CONNECTIONS = 64  # as wrk -c64 in the throughput row


class HttpClient(asyncio.Protocol):
    """One keep-alive connection sending `GET /`, one request in flight (no
    pipelining, like wrk); responses are framed by their Content-Length."""

    def __init__(self, window: Window, request: bytes) -> None:
        self.window = window
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.outstanding = 0
        self.wrong = 0  # not 200, no Content-Length, or never answered
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is not an asyncio.Transport subclass, only alike.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.outstanding:  # the server closed with a request unanswered
            self.wrong += self.outstanding
            self.outstanding = 0

    def has_room(self) -> bool:
        return self.outstanding == 0 and not self.closed

    def fire(self) -> None:
        assert self.transport is not None
        self.outstanding += 1
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0 or not head.startswith(b"http/1.1 200"):
                self.wrong += 1
                if at < 0:  # no way to find the next response: give up on this one
                    assert self.transport is not None
                    self.transport.close()
                    return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else end])
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length :]
            self.arrived()
        self.buffer = buffer

    def arrived(self) -> None:
        self.outstanding -= 1
        window = self.window
        window.count += 1
        if window.running and not window.paced:
            self.fire()


async def http_hello(connector: Connector, args: argparse.Namespace) -> dict[str, Any]:
    """GET / on HTTP_CONNECTIONS keep-alive connections: closed loop, or paced
    with --rate (wrk, which run.py uses for the throughput row, cannot pace)."""
    window = Window(paced=args.rate is not None)
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    sources = itertools.cycle(SOURCE_ADDRESSES)

    async def connect() -> HttpClient:
        _, client = await asyncio.wait_for(
            loop.create_connection(
                lambda: HttpClient(window, request),
                "127.0.0.1",
                args.port,
                local_addr=(next(sources), 0),
            ),
            CONNECT_TIMEOUT,
        )
        return client

    # Paced: twice wrk's connections, one request in flight on each, give the
    # schedule the same headroom as PACED_HEADROOM gives the WebSocket slots.
    connections = HTTP_CONNECTIONS * (PACED_HEADROOM if window.paced else 1)
    clients = list(await asyncio.gather(*(connect() for _ in range(connections))))
    try:
        if window.paced:
            levels = await run_levels(
                window, list(clients), args, lambda: drain(clients, "responses")
            )
        else:
            for client in clients:
                client.fire()
            sample = await measure(window, args.warmup, args.duration)
        window.running = False
        await drain(clients, "responses")
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.close()
    if any(c.wrong for c in clients):
        raise ScenarioError("a response was missing, not 200, or without Content-Length")
    if window.paced:
        return {"levels": levels, "unit": "req/s"}
    return {"value": sample.rate, "unit": "req/s", **sample.shares()}


# ---------------------------------------------------------------- entry point


Scenario = Callable[[Connector, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {
    "ws_echo_small": ws_echo_small,
    "ws_echo_1k": ws_echo_1k,
    "ws_echo_1m": ws_echo_1m,
    "ws_handshake": ws_handshake,
    "ws_idle_rss": ws_idle_rss,
    "ws_broadcast": ws_broadcast,
    "ws_deflate_on": ws_deflate_on,
    "ws_deflate_off": ws_deflate_off,
    "http_hello": http_hello,
}
# Scenarios with a paced mode (--rate); ws_idle_rss measures memory, not rate.
PACED_SCENARIOS = frozenset(SCENARIOS) - {"ws_idle_rss"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first")
    parser.add_argument(
        "--first-warmup",
        type=float,
        help="with --rate: unmeasured seconds before the first rate (default: --warmup), "
        "so a freshly started server is measured warm",
    )
    parser.add_argument(
        "--server-pid", type=int, help="server process: its CPU share, and RSS for ws_idle_rss"
    )
    parser.add_argument("--quick", action="store_true", help="smaller connection counts")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        metavar="R",
        help="paced mode: offer R units/s in total over all connections (messages, "
        "requests, handshakes or deliveries) instead of running flat out; several "
        "rates are measured one after another on the same connections",
    )
    args = parser.parse_args(argv)
    if args.rate is not None and args.scenario not in PACED_SCENARIOS:
        parser.error(f"{args.scenario} has no paced mode")
    if args.rate is not None and min(args.rate) <= 0:
        parser.error("--rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    global SERVER_PID
    args = parse_args(sys.argv[1:] if argv is None else argv)
    SERVER_PID = args.server_pid
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The same allocator tuning as the asgiws command (asgiws.memory), so the
    # client's own 1 MiB buffers do not fault in fresh pages per message.
    tune_malloc(32 * 1024 * 1024)
    scenario = SCENARIOS[args.scenario]
    started = time.monotonic()
    result: dict[str, Any]
    try:
        result = uvloop.run(scenario(Connector(args.port), args))
    except (ScenarioError, OSError, asyncio.TimeoutError) as exc:
        result = {"value": None, "error": f"{type(exc).__name__}: {exc}"}
    result["scenario"] = args.scenario
    result["wall_s"] = time.monotonic() - started
    print(json.dumps(result))
    ok = result.get("value") is not None or "note" in result or "levels" in result
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
