"""The hub benchmark's subscribers: frames counted by bytes, not parsed one by one.

Every delivery of benchmarks/hub.py is the same shape: one unmasked binary
frame with a 64-byte payload, FRAME_SIZE bytes on the wire (0x82 0x40, then
the payload: sequence number and send time, padded).  picows calls a Python
listener per frame, which kept the load generator at a full core before the
servers were; here a subscriber is a plain asyncio protocol that, after the
handshake, checks each read with slices that run in C -- the bytes where a
frame starts must be 0x82, the bytes after them 0x40 -- and counts whole
frames by byte count: one Python call per read, however many frames it holds.

Only the sampled subscribers (a few hundred, spread over the fan-out order
and over the server processes) parse each frame's payload: they record the
delivery latency and check that the sequence numbers arrive in order with
none missing.  A bad header, a sampled frame out of order, a connection lost
mid-run, or a stream that does not end on a frame boundary with exactly one
frame per message sent fails the run (`BenchmarkError`).
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from collections.abc import Callable
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

__all__ = ["FRAME_SIZE", "BenchmarkError", "Subscribers", "trigger_payload"]

OPCODE = 0x82  # FIN + binary
LENGTH = BROADCAST_SIZE  # unmasked, 7-bit length
FRAME_SIZE = 2 + BROADCAST_SIZE
_OPCODE_BYTE = bytes([OPCODE])
_LENGTH_BYTE = bytes([LENGTH])
_HEAD = struct.Struct(">QQ")  # sequence number, send time (monotonic ns)


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
    """One subscriber: the handshake, then frames checked and counted by bytes."""

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
        # Every read after the handshake is checked and counted in this one
        # Python call: the load generator bounds the hub benchmark's smaller
        # rows, and a call per helper was a fifth of its Python time.
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
        self.partial = b""  # the current frame's bytes, when a read cut it
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


class Subscribers:
    """`size` raw subscribers of one group, spread over the servers' ports."""

    def __init__(self, size: int, sampled: int, processes: int) -> None:
        self.tally = Tally(size)
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
            if index in self.sampled_indexes:
                member: Subscriber = SampledSubscriber(index, self.tally, requests[which], None)
            else:
                member = Subscriber(index, self.tally, requests[which])
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
        wrong = [m.index for m in self.members if tally.counts[m.index] != messages or m.phase]
        if wrong:
            m = self.members[wrong[0]]
            raise BenchmarkError(
                f"{len(wrong)} subscriber(s) did not get exactly {messages} frames: e.g. "
                f"#{m.index}: {tally.counts[m.index]} frames + {m.phase} bytes"
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
