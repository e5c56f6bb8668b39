"""The hub benchmark's C subscriber counter (benchmarks/hub_counter.c) does
what the Python classes of benchmarks/hub_client.py do: the same counts,
phases, sequence numbers, lagging subscribers, completions and failures,
whatever the reads are cut into."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.hub_client import (
    FRAME_SIZE,
    PYTHON,
    BenchmarkError,
    Implementation,
    SampledSubscriber,
    Subscriber,
    Subscribers,
    Tally,
    build_counter,
    load_counter,
    trigger_payload,
)

HANDSHAKE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
BAD_FRAME = f"subscriber 0: not a {FRAME_SIZE}-byte binary frame"


@pytest.fixture(scope="module")
def c_impl(tmp_path_factory: pytest.TempPathFactory) -> Implementation:
    path = build_counter(tmp_path_factory.mktemp("c"))
    assert path is not None, "hub_counter.c did not build"
    return load_counter(path)


@pytest.fixture(scope="module")
def impls(c_impl: Implementation) -> list[Implementation]:
    return [PYTHON, c_impl]


def frame(sequence: int) -> bytes:
    return bytes([0x82, 0x40]) + trigger_payload(sequence)


def frames(count: int, start: int = 0) -> bytes:
    return b"".join(frame(sequence) for sequence in range(start, start + count))


def members(
    impl: Implementation, size: int, sampled: set[int]
) -> tuple[Tally, list[Subscriber], list[int]]:
    """`size` upgraded subscribers on one tally; completions recorded."""
    tally = impl.tally(size)
    completions: list[int] = []
    tally.on_complete = lambda: completions.append(tally.complete)
    group: list[Subscriber] = []
    for index in range(size):
        if index in sampled:
            member: Subscriber = impl.sampled(index, tally, b"", [])
        else:
            member = impl.subscriber(index, tally, b"")
        group.append(member)
    return tally, group, completions


def lagging(tally: Tally) -> frozenset[int] | None:
    """A copy: the Python tally's set changes in place."""
    return None if tally.lagging is None else frozenset(tally.lagging)


def state(tally: Tally, group: list[Subscriber], completions: list[int]) -> tuple[Any, ...]:
    """What the two implementations must agree on (latency values aside)."""
    return (
        tally.total,
        tally.complete,
        tally.threshold,
        list(tally.counts),
        lagging(tally),
        tally.error,
        list(completions),
        [(m.phase, m.head is None) for m in group],
        [
            (m.sequence, None if m.latencies is None else len(m.latencies))
            for m in group
            if isinstance(m, SampledSubscriber)
        ],
    )


def feed(member: Subscriber, stream: bytes, cuts: list[int]) -> None:
    previous = 0
    for cut in [*cuts, len(stream)]:
        if cut > previous:
            member.data_received(stream[previous:cut])
            previous = cut


def one_stream(impl: Implementation, sampled: bool, stream: bytes, cuts: list[int]) -> Any:
    tally, group, completions = members(impl, 1, {0} if sampled else set())
    feed(group[0], stream, cuts)
    return state(tally, group, completions)


def agree(impls: list[Implementation], stream: bytes, cuts: list[int], sampled: bool = True) -> Any:
    python, c = (one_stream(impl, sampled, stream, cuts) for impl in impls)
    assert c == python, f"cuts {cuts}"
    return c


async def test_frames_cut_at_every_offset(impls: list[Implementation]) -> None:
    stream = HANDSHAKE + frames(5)
    for sampled in (True, False):
        for cut in range(len(stream) + 1):
            result = agree(impls, stream, [cut], sampled)
            assert result[3] == [5] and result[5] is None
            assert result[6] == [1, 2, 3, 4, 5]
    body = frames(2)
    for a in range(len(body) + 1):  # every pair of cuts, after the handshake
        for b in range(a, len(body) + 1):
            agree(impls, HANDSHAKE + body, [len(HANDSHAKE), len(HANDSHAKE) + a, len(HANDSHAKE) + b])
    for size in range(1, FRAME_SIZE + 2):  # reads of every size
        agree(impls, HANDSHAKE + frames(7), list(range(len(HANDSHAKE), 7 * FRAME_SIZE, size)))


async def test_partial_frame_stays_in_phase(impls: list[Implementation]) -> None:
    for extra in range(1, FRAME_SIZE):
        result = agree(impls, HANDSHAKE + frames(3) + frame(3)[:extra], [len(HANDSHAKE) + 100])
        assert result[3] == [3] and result[7] == [(extra, True)] and result[8] == [(3, 3)]


async def test_latencies_are_delivery_times(impls: list[Implementation]) -> None:
    for impl in impls:
        tally, group, _ = members(impl, 1, {0})
        member = group[0]
        assert isinstance(member, SampledSubscriber)
        stream = frames(3)
        member.data_received(HANDSHAKE)
        member.data_received(stream[:100])
        time.sleep(0.002)
        member.data_received(stream[100:])
        assert member.latencies is not None and len(member.latencies) == 3
        assert all(2_000_000 <= latency < 5_000_000_000 for latency in member.latencies[1:])
        member.latencies = None  # latency recording off: still counted and checked
        member.data_received(frame(3))
        assert tally.counts == [4] and member.sequence == 4 and tally.error is None


@pytest.mark.parametrize("position", [0, 1])
async def test_bad_header_byte(impls: list[Implementation], position: int) -> None:
    for which in range(3):
        stream = bytearray(HANDSHAKE + frames(3))
        stream[len(HANDSHAKE) + which * FRAME_SIZE + position] ^= 0x01
        for sampled in (True, False):
            for cut in range(len(HANDSHAKE), len(stream) + 1):
                result = agree(impls, bytes(stream), [cut], sampled)
                assert result[5] == BAD_FRAME
                assert result[3][0] < 3  # the bad read is not counted


async def test_sequence_out_of_order(impls: list[Implementation]) -> None:
    for stream, message in (
        (frames(2) + frame(3), "subscriber 0: message 3 where 2 was due"),
        (frame(1), "subscriber 0: message 1 where 0 was due"),
        (frames(2) + frame(1), "subscriber 0: message 1 where 2 was due"),
    ):
        for cut in range(len(stream) + 1):
            result = agree(impls, HANDSHAKE + stream, [len(HANDSHAKE), len(HANDSHAKE) + cut])
            assert result[5] == message
            assert result[3] == [len(stream) // FRAME_SIZE]  # counted all the same
        # a subscriber that is not sampled does not read sequence numbers
        assert agree(impls, HANDSHAKE + stream, [], sampled=False)[5] is None


async def test_completions_with_lagging_subscribers(impls: list[Implementation]) -> None:
    """Random reads to 5 subscribers: the same lagging sets and completions
    after every read, each fan-out completed once, in order."""
    size, messages = 5, 12
    stream = frames(messages)
    for seed in range(20):
        runs = []
        for impl in impls:
            rng = random.Random(seed)
            tally, group, completions = members(impl, size, {1, 3})
            for member in group:
                member.data_received(HANDSHAKE)
            offsets = [0] * size
            steps = []
            while any(offset < len(stream) for offset in offsets):
                index = rng.choice([i for i in range(size) if offsets[i] < len(stream)])
                end = min(len(stream), offsets[index] + rng.randint(1, 3 * FRAME_SIZE))
                group[index].data_received(stream[offsets[index] : end])
                offsets[index] = end
                steps.append(state(tally, group, completions))
            runs.append(steps)
            assert completions == list(range(1, messages + 1))
            assert tally.lagging is None and tally.error is None
        assert runs[0] == runs[1], f"seed {seed}"


def counting_tally(impl: Implementation, size: int) -> tuple[Tally, list[int]]:
    tally = impl.tally(size)
    calls: list[int] = []
    tally.on_complete = lambda: calls.append(tally.complete)
    return tally, calls


async def test_tally_add_and_fail(impls: list[Implementation]) -> None:
    results = []
    for impl in impls:
        tally, calls = counting_tally(impl, 3)
        steps: list[Any] = []
        for index, count in ((0, 2), (1, 1), (2, 0), (2, 3), (1, 4), (0, 0), (0, 3), (2, 9)):
            tally.add(index, count)
            steps.append((tally.total, tally.complete, lagging(tally), list(calls)))
        tally.fail("first")
        tally.fail("second")
        steps.append(tally.error)
        results.append(steps)
    assert results[0] == results[1]
    assert [step[3] for step in results[1][-3:-1]] == [[1, 2, 3], [1, 2, 3, 4, 5]]
    assert results[1][-1] == "first"


async def test_check_after_the_run(impls: list[Implementation]) -> None:
    """Subscribers.check(): exact frame counts, nothing left over, no failure."""
    messages: list[str] = []
    for impl in impls:
        subscribers = Subscribers(4, 2, 1, impl)
        subscribers.members = [
            impl.sampled(i, subscribers.tally, b"", None)
            if i in subscribers.sampled_indexes
            else impl.subscriber(i, subscribers.tally, b"")
            for i in range(4)
        ]
        for member in subscribers.members:
            member.data_received(HANDSHAKE + frames(3))
        subscribers.check(3)
        assert subscribers.tally.counts == [3, 3, 3, 3]
        with pytest.raises(BenchmarkError) as short:
            subscribers.check(4)
        subscribers.members[2].data_received(frame(3)[:10])
        with pytest.raises(BenchmarkError) as partial:
            subscribers.check(3)
        subscribers.tally.fail("subscriber 1 lost its connection (None)")
        with pytest.raises(BenchmarkError) as failed:
            subscribers.check(3)
        messages += [str(short.value), str(partial.value), str(failed.value)]
    assert messages[:3] == messages[3:]
    assert (
        messages[1] == "1 subscriber(s) did not get exactly 3 frames: e.g. #2: 3 frames + 10 bytes"
    )


async def test_closing_and_handshake(impls: list[Implementation]) -> None:
    for impl in impls:
        tally, group, _ = members(impl, 1, set())
        member = group[0]
        member.data_received(HANDSHAKE[:10])  # the answer in pieces
        assert member.head == HANDSHAKE[:10]
        member.data_received(HANDSHAKE[10:] + frame(0))
        assert member.head is None and tally.counts == [1] and member.upgraded.done()
        member.closing = True  # what the server sends after our close frame is not counted
        member.data_received(b"\x88\x02\x03\xe8")
        assert tally.counts == [1] and member.phase == 0 and tally.error is None
        refused, other, _ = members(impl, 1, set())
        other[0].data_received(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        assert refused.error == "subscriber 0: b'HTTP/1.1 403 Forbidden\\r\\n\\r\\n'"
        with pytest.raises(BenchmarkError):
            other[0].upgraded.result()


async def test_c_types_check_their_arguments(c_impl: Implementation) -> None:
    tally = c_impl.tally(2)
    member = c_impl.sampled(0, tally, b"", None)
    bad: list[Callable[[], object]] = [
        lambda: c_impl.tally(0),
        lambda: tally.add(2, 1),
        lambda: tally.add(-1, 1),
        lambda: tally.add(0, -1),
        lambda: setattr(member, "tally", Tally(2)),
        lambda: setattr(member, "phase", FRAME_SIZE),
        lambda: setattr(member, "latencies", ()),
        lambda: setattr(tally, "on_complete", 1),
    ]
    for call in bad:
        with pytest.raises((TypeError, ValueError, IndexError)):
            call()
    member.data_received(HANDSHAKE)
    with pytest.raises(TypeError):
        member.data_received("text")  # type: ignore[arg-type]
    # no references leaked per read
    assert isinstance(member, SampledSubscriber)
    latencies: list[int] = []
    member.latencies = latencies
    stream = frames(200)
    before = sys.getrefcount(tally), sys.getrefcount(latencies), sys.getrefcount(stream)
    for offset in range(0, len(stream), 50):
        member.data_received(stream[offset : offset + 50])
    assert tally.counts == [200, 0] and len(latencies) == 200
    assert (sys.getrefcount(tally), sys.getrefcount(latencies), sys.getrefcount(stream)) == before
