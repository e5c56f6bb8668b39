"""The fuzz targets as tests: every seed and every saved finding replayed,
and hypothesis searching the same properties on each run.

A finding of `make fuzz` goes into `regressions/<target>/` under a name
that says what it broke; it is replayed here forever after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.seeds import SEEDS
from tests.fuzz.targets import TARGETS, fuzz_http_parser, fuzz_uri, fuzz_ws_engine

REGRESSIONS = Path(__file__).parent / "regressions"


def _cases() -> list[tuple[str, str, bytes]]:
    cases = []
    for target, make in SEEDS.items():
        cases += [(target, f"seed-{i}", seed) for i, seed in enumerate(make())]
    for path in sorted(REGRESSIONS.glob("*/*")):
        cases.append((path.parent.name, path.name, path.read_bytes()))
    return cases


@pytest.mark.parametrize(
    ("target", "data"), [(t, d) for t, _, d in _cases()], ids=[f"{t}-{n}" for t, n, _ in _cases()]
)
def test_saved_inputs_keep_every_property(target: str, data: bytes) -> None:
    TARGETS[target].run(data)


def test_every_target_has_seeds_and_a_regressions_folder() -> None:
    assert set(SEEDS) == set(TARGETS)
    assert all((REGRESSIONS / name).is_dir() for name in TARGETS)


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(flags=st.integers(0, 255), piece=st.integers(0, 31), stream=st.binary(max_size=600))
def test_engine_on_arbitrary_bytes(flags: int, piece: int, stream: bytes) -> None:
    """Any bytes, either role, with or without deflate: the engine raises
    nothing, reports failures as ConnectionFailed with a protocol close code,
    and the C accelerator in pieces agrees with pure Python on the whole."""
    fuzz_ws_engine(bytes([flags, piece]) + stream)


_HEAD_LINES = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\n",
        b"POST /p?q HTTP/1.1\r\n",
        b"Host: a\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Connection: close\r\n",
        b"X: a\r\n b\r\n",
        b"\r\n",
        b"\n",
        b"3\r\nabc\r\n",
        b"0\r\n\r\n",
        b"abc",
    ]
)


@_SETTINGS
@given(piece=st.integers(0, 63), lines=st.lists(_HEAD_LINES | st.binary(max_size=8), max_size=14))
def test_both_http_parsers_agree_on_any_request_stream(piece: int, lines: list[bytes]) -> None:
    fuzz_http_parser(bytes([piece]) + b"".join(lines))


@_SETTINGS
@given(uri=st.text(max_size=80) | st.builds(lambda s: "ws://" + s, st.text(max_size=60)))
def test_uri_parser_on_any_text(uri: str) -> None:
    fuzz_uri(uri.encode("utf-8", "surrogatepass"))
