"""The hub benchmark's subscribers: frames counted by bytes, not parsed one by one.

Every delivery of benchmarks/hub.py is the same shape: one unmasked binary
frame with a 64-byte payload, FRAME_SIZE bytes on the wire (0x82 0x40, then
the payload: sequence number and send time, padded).  picows calls a Python
listener per frame, which kept the load generator at a full core before the
servers were; here a subscriber is a plain asyncio protocol that, after the
handshake, checks each read -- the bytes where a frame starts must be 0x82,
the bytes after them 0x40 -- and counts whole frames by byte count.

Only the sampled subscribers (a few hundred, spread over the fan-out order
and over the server processes) parse each frame's payload: they record the
delivery latency and check that the sequence numbers arrive in order with
none missing.  A bad header, a sampled frame out of order, a connection lost
mid-run, or a stream that does not end on a frame boundary with exactly one
frame per message sent fails the run (`BenchmarkError`).

Two implementations with the same checks: in C (benchmarks/hub_counter.c,
built at benchmark start: `build_counter`, `load_counter`), where a read
after the handshake runs no Python code, and the Python classes here
(`PYTHON`), the fallback where there is no C compiler.  The handshake,
connection set-up and loss are the Python code below in both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from benchmarks.loadgen import (
    BROADCAST_SIZE,
    CLOSE_FRAME,
    CLOSE_TIMEOUT,
    CONNECT_CONCURRENCY,
    CONNECT_TIMEOUT,
    HANDSHAKE_KEY,
    SOURCE_ADDRESSES,
)
from tests.unit.c_build import compile_extension, load_extension

__all__ = [
    "FRAME_SIZE",
    "PYTHON",
    "BenchmarkError",
    "Implementation",
    "Subscribers",
    "build_counter",
    "load_counter",
    "trigger_payload",
]

OPCODE = 0x82  # FIN + binary
LENGTH = BROADCAST_SIZE  # unmasked, 7-bit length
FRAME_SIZE = 2 + BROADCAST_SIZE
_OPCODE_BYTE = bytes([OPCODE])
_LENGTH_BYTE = bytes([LENGTH])
_HEAD = struct.Struct(">QQ")  # sequence number, send time (monotonic ns)
COUNTER_SOURCE = Path(__file__).with_name("hub_counter.c")
COUNTER_MODULE = "hub_counter"


class BenchmarkError(RuntimeError):
    """What arrived is not what was sent: the run has no valid number."""


def trigger_payload(sequence: int) -> bytes:
    """The message the control connection publishes, stamped now."""
    return _HEAD.pack(sequence, time.monotonic_ns()).ljust(BROADCAST_SIZE, b".")


class Tally:
    """Frames per subscriber, and how many fan-outs every subscriber has whole.

    Each connection gets the messages in publish order, so fan-out k is
    complete once every subscriber counted more than k frames.  The O(N)
    scan for the subscribers still short of it runs once per fan-out, when
    the total count says it could be complete; after that only those
    subscribers' reads are checked.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.counts = [0] * size
        self.total = 0
        self.complete = 0
        self.threshold = size  # total count at which fan-out `complete` may be done
        self.lagging: set[int] | None = None
        self.on_complete: Callable[[], None] = lambda: None
        self.error: str | None = None

    def add(self, index: int, frames: int) -> None:
        counts = self.counts
        count = counts[index] = counts[index] + frames
        self.total += frames
        lagging = self.lagging
        if lagging is None:
            if self.total >= self.threshold:
                self._scan()
        elif count > self.complete and index in lagging:
            lagging.discard(index)
            if not lagging:
                self._advance()

    def _scan(self) -> None:
        while self.total >= self.threshold:
            complete = self.complete
            lagging = {i for i, count in enumerate(self.counts) if count <= complete}
            if lagging:
                self.lagging = lagging
                return
            self._advance()

    def _advance(self) -> None:
        self.lagging = None
        self.complete += 1
        self.threshold += self.size
        self.on_complete()
        if self.lagging is None and self.total >= self.threshold:
            self._scan()

    def fail(self, why: str) -> None:
        if self.error is None:
            self.error = why


class Subscriber(asyncio.Protocol):
    """One subscriber: the handshake, then frames checked and counted by bytes.

    The C implementation's subscriber class derives from hub_counter's
    `Subscriber` and this class: its `data_received` is the C one, which
    calls `handshake` here until the upgrade; the attributes that C reads
    (`index`, `tally`, `head`, `phase`, `closing`, and in sampled ones
    `latencies`, `sequence`) are its slots.
    """

    sampled = False  # parse() each read (SampledSubscriber)

    def __init__(self, index: int, tally: Tally, request: bytes) -> None:
        self.index = index
        self.tally = tally
        self.request = request
        self.head: bytes | None = b""  # the handshake answer so far; None once upgraded
        self.phase = 0  # bytes of the current frame already received
        self.closing = False
        loop = asyncio.get_running_loop()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is only alike
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        # The Python implementation (hub_counter.c's data_received does the
        # same in C): every read after the handshake is checked and counted
        # in this one call, with no helper calls.
        if self.head is None and not self.closing:
            phase = self.phase
            # Where a frame starts (stream offset % FRAME_SIZE == 0) the byte
            # must be the opcode, one later the length: two C-speed scans.
            if data[-phase % FRAME_SIZE :: FRAME_SIZE].lstrip(_OPCODE_BYTE) or data[
                (1 - phase) % FRAME_SIZE :: FRAME_SIZE
            ].lstrip(_LENGTH_BYTE):
                self.tally.fail(f"subscriber {self.index}: not a {FRAME_SIZE}-byte binary frame")
                return
            end = phase + len(data)
            self.phase = end % FRAME_SIZE
            if self.sampled:  # before counting, which may publish the next message
                self.parse(data)
            if end >= FRAME_SIZE:
                self.tally.add(self.index, end // FRAME_SIZE)
        elif self.head is not None:
            data = self.handshake(data)
            if data and not self.closing:
                self.data_received(data)

    def parse(self, data: bytes) -> None:
        """Sampled subscribers only (see SampledSubscriber)."""

    def handshake(self, data: bytes) -> bytes:
        """Reads the 101 answer; returns what followed it."""
        assert self.head is not None
        head = self.head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self.head = head
            if len(head) > 4096:
                self.tally.fail(f"subscriber {self.index}: no end of the handshake answer")
            return b""
        self.head = None
        if not head.startswith(b"HTTP/1.1 101"):
            self.tally.fail(f"subscriber {self.index}: {head[:40]!r}")
            self.upgraded.set_exception(BenchmarkError(f"handshake refused: {head[:40]!r}"))
            return b""
        self.upgraded.set_result(None)
        return head[end + 4 :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.tally.fail(f"subscriber {self.index} lost its connection ({exc!r})")
        if not self.upgraded.done():
            self.upgraded.set_exception(BenchmarkError("connection lost during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)


class SampledSubscriber(Subscriber):
    """Also parses each frame: latency, and sequence numbers in order."""

    sampled = True

    def __init__(
        self, index: int, tally: Tally, request: bytes, latencies: list[int] | None
    ) -> None:
        super().__init__(index, tally, request)
        self.latencies = latencies  # appended to while not None (set by Subscribers)
        self.partial = b""  # the current frame's bytes, when a read cut it (Python only)
        self.sequence = 0

    def parse(self, data: bytes) -> None:
        now = time.monotonic_ns()
        stream = self.partial + data  # self.partial: the bytes of a frame a read cut
        whole = len(stream) - self.phase  # data_received has moved self.phase on
        self.partial = stream[whole:]
        latencies = self.latencies
        unpack = _HEAD.unpack_from
        for offset in range(0, whole, FRAME_SIZE):
            sequence, sent_ns = unpack(stream, offset + 2)
            if sequence != self.sequence:
                self.tally.fail(
                    f"subscriber {self.index}: message {sequence} where {self.sequence} was due"
                )
                return
            self.sequence += 1
            if latencies is not None:
                latencies.append(now - sent_ns)


@dataclasses.dataclass(frozen=True)
class Implementation:
    """The subscriber classes of one implementation."""

    name: str  # "c" or "python": `subscriber_impl` in hub.py's results
    tally: Callable[[int], Tally]
    subscriber: type[Subscriber]
    sampled: type[SampledSubscriber]


PYTHON = Implementation("python", Tally, Subscriber, SampledSubscriber)


def build_counter(directory: Path) -> Path | None:
    """Compiles hub_counter.c into `directory` and checks that it loads; None
    (and says so on stderr) when it cannot: the Python classes then run."""
    try:
        path = compile_extension(COUNTER_SOURCE, COUNTER_MODULE, directory)
        load_counter(path)
        return path
    except (OSError, subprocess.SubprocessError, ImportError) as exc:
        print(
            f"hub: could not build {COUNTER_SOURCE.name} ({exc}); the subscribers "
            "run in Python (slower; subscriber_impl 'python' in the results)",
            file=sys.stderr,
            flush=True,
        )
        return None


def load_counter(path: Path) -> Implementation:
    """The C implementation from a build of hub_counter.c (`build_counter`)."""
    module = load_extension(path, COUNTER_MODULE)
    if module.FRAME_SIZE != FRAME_SIZE:
        raise ImportError(f"{path.name} counts {module.FRAME_SIZE}-byte frames, not {FRAME_SIZE}")
    base = module.Subscriber
    subscriber = type(
        "CSubscriber",
        (base, Subscriber),
        {"__doc__": "Subscriber with hub_counter's data_received.", "__module__": __name__},
    )
    sampled = type(
        "CSampledSubscriber",
        (base, SampledSubscriber),
        {"__doc__": "SampledSubscriber with hub_counter's data_received.", "__module__": __name__},
    )
    return Implementation(
        "c",
        cast(Callable[[int], Tally], module.Tally),
        cast(type[Subscriber], subscriber),
        cast(type[SampledSubscriber], sampled),
    )


class Subscribers:
    """`size` raw subscribers of one group, spread over the servers' ports,
    of `implementation` (the Python classes unless given)."""

    def __init__(
        self, size: int, sampled: int, processes: int, implementation: Implementation | None = None
    ) -> None:
        self.implementation = implementation or PYTHON
        self.tally = self.implementation.tally(size)
        self.latencies: list[int] = []
        self.members: list[Subscriber] = []
        stride = max(1, size // max(1, sampled))
        # Every stride-th subscriber, shifted so each server process gets some.
        self.sampled_indexes = {
            min(size - 1, k * stride + k % processes) for k in range(min(size, sampled))
        }

    async def open(self, ports: list[int], group: str) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        sources = itertools.cycle(SOURCE_ADDRESSES)
        requests = [
            (
                f"GET /broadcast?group={group} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            for port in ports
        ]

        async def one(index: int) -> Subscriber:
            which = index % len(ports)
            classes = self.implementation
            if index in self.sampled_indexes:
                member: Subscriber = classes.sampled(index, self.tally, requests[which], None)
            else:
                member = classes.subscriber(index, self.tally, requests[which])
            async with gate:
                await asyncio.wait_for(
                    loop.create_connection(
                        lambda: member,
                        "127.0.0.1",
                        ports[which],
                        local_addr=(next(sources), 0),
                    ),
                    CONNECT_TIMEOUT,
                )
                await asyncio.wait_for(member.upgraded, CONNECT_TIMEOUT)
            return member

        self.members = list(await asyncio.gather(*(one(index) for index in range(self.tally.size))))

    def measure_latency(self, on: bool) -> None:
        """Sampled subscribers record latencies into `self.latencies` while on."""
        sink = self.latencies if on else None
        for member in self.members:
            if isinstance(member, SampledSubscriber):
                member.latencies = sink

    def check(self, messages: int) -> None:
        """Every subscriber got exactly `messages` whole frames, nothing else."""
        tally = self.tally
        if tally.error is not None:
            raise BenchmarkError(tally.error)
        counts = tally.counts  # the C tally's is a new list each time
        wrong = [m.index for m in self.members if counts[m.index] != messages or m.phase]
        if wrong:
            m = self.members[wrong[0]]
            raise BenchmarkError(
                f"{len(wrong)} subscriber(s) did not get exactly {messages} frames: e.g. "
                f"#{m.index}: {counts[m.index]} frames + {m.phase} bytes"
            )

    async def close(self) -> None:
        """Send each a close frame; the server ends TCP (or we do after a while)."""
        for member in self.members:
            member.closing = True
            if member.transport is not None and not member.transport.is_closing():
                member.transport.write(CLOSE_FRAME)
        waiting = [m.lost for m in self.members if not m.lost.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=CLOSE_TIMEOUT)
        for member in self.members:
            if member.transport is not None and not member.lost.done():
                member.transport.abort()
