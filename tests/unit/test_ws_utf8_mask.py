"""Masking (both implementations) and fail-fast UTF-8 validation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asgiws.websocket as ws_pkg
from asgiws.websocket import mask as mask_module
from asgiws.websocket.errors import ProtocolError
from asgiws.websocket.utf8 import TextAssembler, decode_text
from tests.unit.c_build import build_extension

SOURCE = Path(ws_pkg.__file__).parent / "_speedups.c"

MaskFn = Callable[[Any, bytes], bytes]


@pytest.fixture(scope="module")
def c_apply_mask(tmp_path_factory: pytest.TempPathFactory) -> MaskFn:
    """The C extension's masking, built from source (see `c_build`)."""
    module = build_extension(SOURCE, "asgiws.websocket._speedups", tmp_path_factory.mktemp("c"))
    fn: MaskFn = module.apply_mask
    return fn


def naive_mask(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@given(data=st.binary(max_size=2000), mask=st.binary(min_size=4, max_size=4))
def test_python_mask_matches_definition(data: bytes, mask: bytes) -> None:
    assert mask_module.python_apply_mask(data, mask) == naive_mask(data, mask)


@given(data=st.binary(max_size=2000), mask=st.binary(min_size=4, max_size=4))
def test_c_and_python_masks_agree(c_apply_mask: MaskFn, data: bytes, mask: bytes) -> None:
    expected = mask_module.python_apply_mask(data, mask)
    assert c_apply_mask(data, mask) == expected
    assert c_apply_mask(bytearray(data), mask) == expected
    assert c_apply_mask(memoryview(data), mask) == expected


@pytest.mark.parametrize("impl", ["python", "c"])
def test_mask_is_an_involution_and_accepts_buffers(impl: str, c_apply_mask: MaskFn) -> None:
    fn = mask_module.python_apply_mask if impl == "python" else c_apply_mask
    data = os.urandom(100_003)
    key = b"\x01\x80\xfe\x7f"
    masked = fn(memoryview(bytearray(data))[3:], key)
    assert fn(masked, key) == data[3:]
    assert fn(b"", key) == b""
    with pytest.raises(ValueError):
        fn(b"abc", b"abc")


def test_c_mask_refuses_bad_arguments(c_apply_mask: MaskFn) -> None:
    call: Any = c_apply_mask  # (called wrongly on purpose)
    with pytest.raises(TypeError, match="2 arguments"):
        call(b"abc")
    with pytest.raises(TypeError):
        call("text", b"\x01\x02\x03\x04")  # a str is not a buffer
    with pytest.raises(TypeError):
        call(b"abc", 1234)


def test_env_var_forces_the_python_fallback() -> None:
    code = (
        "from asgiws.websocket import mask;"
        "print(mask.apply_mask is mask.python_apply_mask, mask.c_apply_mask is None)"
    )
    env = dict(os.environ, ASGIWS_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["True", "True"]


def test_selected_mask_is_c_when_available_else_python() -> None:
    if mask_module.c_apply_mask is not None:
        assert mask_module.apply_mask is mask_module.c_apply_mask
    else:
        assert mask_module.apply_mask is mask_module.python_apply_mask


# --- UTF-8 ----------------------------------------------------------------------


@given(st.text(max_size=200), st.lists(st.integers(0, 800), max_size=6))
def test_valid_text_decodes_at_any_split(text: str, cuts: list[int]) -> None:
    data = text.encode()
    assembler = TextAssembler()
    prev = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        assembler.feed(data[prev:cut])
        prev = cut
    assembler.feed(data[prev:], final=True)
    assert assembler.result() == text


@pytest.mark.parametrize(
    "prefix, bad",
    [
        (b"hello", b"\xff"),
        (b"\xce\xba\xe1\xbd\xb9", b"\xed\xa0\x80"),  # a UTF-16 surrogate
        (b"ok", b"\xf4\x90\x80\x80"),  # above U+10FFFF
        (b"ok", b"\xc0\xaf"),  # overlong
    ],
)
def test_invalid_utf8_fails_at_the_chunk_holding_it(prefix: bytes, bad: bytes) -> None:
    assembler = TextAssembler()
    assembler.feed(prefix)
    with pytest.raises(ProtocolError) as info:
        # not final, and more valid text would follow: must fail now
        assembler.feed(bad + b"more")
    assert info.value.code == 1007


def test_truncated_sequence_fails_only_at_the_end() -> None:
    assembler = TextAssembler()
    assembler.feed(b"abc\xe2\x82")  # first two bytes of the euro sign
    with pytest.raises(ProtocolError) as info:
        assembler.feed(b"", final=True)
    assert info.value.code == 1007


def test_decode_text() -> None:
    assert decode_text("κόσμε".encode()) == "κόσμε"
    with pytest.raises(ProtocolError) as info:
        decode_text(b"\x80")
    assert info.value.code == 1007
