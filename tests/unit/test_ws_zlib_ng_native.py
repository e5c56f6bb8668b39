"""`_zlib_ng`: permessage-deflate on zlib-ng's native API gives the bytes of
the `zlib-ng` package's own compressobj/decompressobj (the same library,
bound from the package's module), bounds inflate the same way, raises the
package's error class, and is only used when it binds.

The engine-level deflate tests run on it too (test_ws_deflate's `backend`
fixture); these compare it with the package call by call."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgiws.websocket.deflate import TAIL, python_deflate_frame
from asgiws.websocket.frames import BINARY, TEXT
from tests.unit.c_build import build_extension
from tests.unit.test_ws_deflate import (
    NATIVE_SOURCE,
    native_zlib_ng,
    printed_by,
    zlib_ng_module,
)

SYNC, FULL = 2, 3  # Z_SYNC_FLUSH, Z_FULL_FLUSH


def chat_messages(count: int, seed: int) -> list[bytes]:
    """JSON chat events and a few random binaries, as a connection sends them."""
    rng = random.Random(seed)
    words = ["hello", "world", "price", "update", "user", "room", "é", "ok"]
    texts = [
        json.dumps(
            {
                "id": i,
                "user": f"u{rng.randint(0, 50)}",
                "text": " ".join(rng.choices(words, k=rng.randint(0, 300))),
            }
        ).encode()
        for i in range(count)
    ]
    return texts + [rng.randbytes(rng.randint(0, 3000)) for _ in range(count // 8)] + [b""]


@pytest.mark.parametrize("level", [0, 1, 2, 6, 9])
@pytest.mark.parametrize("wbits", [9, 12, 14, 15])
@pytest.mark.parametrize("mode", [SYNC, FULL], ids=["sync", "full"])
def test_compressor_gives_the_packages_bytes(level: int, wbits: int, mode: int) -> None:
    native, ng = native_zlib_ng(), zlib_ng_module()
    ours = native.compressobj(level, native.DEFLATED, -wbits, 5)
    theirs = ng.compressobj(level, ng.DEFLATED, -wbits, 5)
    framed = native.compressobj(level, native.DEFLATED, -wbits, 5)
    framed_theirs = ng.compressobj(level, ng.DEFLATED, -wbits, 5)
    for i, message in enumerate(chat_messages(120, seed=level * 100 + wbits)):
        assert ours.compress(message) + ours.flush(mode) == theirs.compress(message) + theirs.flush(
            mode
        )
        opcode = TEXT if i % 2 else BINARY
        assert native.deflate_frame(framed, message, mode, opcode) == python_deflate_frame(
            framed_theirs, message, mode, opcode
        )


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
def test_frames_of_every_length_inflate_back(size: int) -> None:
    """Random bytes do not compress: these cross the 7-, 16- and 64-bit
    length encodings, the stack buffer (16 KiB) and, at 300,000, the size
    from which the GIL is released."""
    native, ng = native_zlib_ng(), zlib_ng_module()
    message = os.urandom(size)
    frame = native.deflate_frame(native.compressobj(6, 8, -15, 5), message, SYNC, BINARY)
    assert frame == python_deflate_frame(ng.compressobj(6, 8, -15, 5), message, SYNC, BINARY)
    header = 2 if frame[1] < 126 else 4 if frame[1] == 126 else 10
    inflater = native.decompressobj(wbits=-15)
    assert inflater.decompress(frame[header:] + TAIL) == message


def test_an_empty_message_is_one_octet_that_keeps_the_stream_in_step() -> None:
    native = native_zlib_ng()
    compressor = native.compressobj(6, 8, -15, 5)
    inflater = native.decompressobj(wbits=-15)
    for message in [b"first " * 50, b"", b"", b"after two empty ones " * 20]:
        frame = native.deflate_frame(compressor, message, SYNC, TEXT)
        payload = frame[2:]
        if not message:
            assert payload == b"\x00"
        assert inflater.decompress(payload + TAIL) == message


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.binary(max_size=5000) | st.text(max_size=800).map(str.encode), max_size=8),
    cut=st.integers(1, 50),
    wbits=st.integers(8, 15),
)
def test_inflater_gives_what_the_package_gives(messages: list[bytes], cut: int, wbits: int) -> None:
    native, ng = native_zlib_ng(), zlib_ng_module()
    sender = ng.compressobj(6, ng.DEFLATED, -max(wbits, 9), 8)
    ours, theirs = native.decompressobj(wbits=-wbits), ng.decompressobj(wbits=-wbits)
    for message in messages:
        stream = sender.compress(message * 3) + sender.flush(SYNC)
        pieces = [stream[i : i + cut] for i in range(0, len(stream), cut)]
        assert b"".join(map(ours.decompress, pieces)) == message * 3
        assert b"".join(map(theirs.decompress, pieces)) == message * 3


def test_inflate_stops_at_max_length() -> None:
    native, ng = native_zlib_ng(), zlib_ng_module()
    compressor = ng.compressobj(6, ng.DEFLATED, -15, 8)
    bomb = compressor.compress(bytes(5_000_000)) + compressor.flush(SYNC)
    for limit in [1, 1000, 16 * 1024, 16 * 1024 + 1, 100_000]:
        assert native.decompressobj(wbits=-15).decompress(bomb, limit) == bytes(limit)
    assert native.decompressobj(wbits=-15).decompress(bomb) == bytes(5_000_000)


def test_end_of_stream_sets_eof_and_ignores_what_follows() -> None:
    native, ng = native_zlib_ng(), zlib_ng_module()
    compressor = ng.compressobj(6, ng.DEFLATED, -15, 8)
    final = compressor.compress(b"last words " * 30) + compressor.flush()  # Z_FINISH
    inflater = native.decompressobj(wbits=-15)
    assert not inflater.eof
    assert inflater.decompress(final + b"trailing junk") == b"last words " * 30
    assert inflater.eof


def test_errors_are_the_packages_and_say_what_is_wrong() -> None:
    native, ng = native_zlib_ng(), zlib_ng_module()
    with pytest.raises(ng.error, match="Error -3 while decompressing data"):
        native.decompressobj(wbits=-15).decompress(b"\xff\xff\xff\xff")
    with pytest.raises(ValueError, match="Invalid initialization option"):
        native.compressobj(6, 8, -8, 5)  # zlib-ng refuses a raw 8-bit deflater (see deflate.py)
    with pytest.raises(ValueError, match="Invalid initialization option"):
        native.compressobj(10, 8, -15, 5)
    with pytest.raises(ValueError, match="Invalid initialization option"):
        native.decompressobj(wbits=-16)
    compressor = native.compressobj(6, 8, -15, 5)
    with pytest.raises(ValueError, match="Z_SYNC_FLUSH or Z_FULL_FLUSH"):
        compressor.flush(4)  # Z_FINISH: not what a WebSocket message ends with
    with pytest.raises(ValueError, match="opcode"):
        native.deflate_frame(compressor, b"x", SYNC, 16)
    with pytest.raises(TypeError, match="needs a Deflater"):
        native.deflate_frame(ng.compressobj(), b"x", SYNC, TEXT)
    with pytest.raises(TypeError, match="4 arguments"):
        native.deflate_frame(compressor, b"x", SYNC)
    with pytest.raises(TypeError):
        compressor.compress("text")  # a str is not bytes
    with pytest.raises(ValueError, match="non-negative"):
        native.decompressobj().decompress(b"", -1)


def test_a_stream_busy_in_another_thread_is_refused_not_corrupted() -> None:
    """Big inputs are compressed with the GIL released: meanwhile the same
    stream refuses a second caller instead of interleaving two inputs."""
    native = native_zlib_ng()
    compressor = native.compressobj(6, 8, -15, 8)
    big = os.urandom(32 * 2**20)
    done: list[bytes] = []
    worker = threading.Thread(target=lambda: done.append(compressor.compress(big)))
    worker.start()
    refused = 0
    while worker.is_alive() and not refused:  # bounded by the worker's one call
        try:
            compressor.compress(b"")
        except RuntimeError as exc:
            assert "in use by another thread" in str(exc)
            refused += 1
    worker.join(timeout=60)
    assert refused == 1
    stream = done[0] + compressor.flush(SYNC)
    assert native.decompressobj(wbits=-15).decompress(stream + TAIL) == big


def test_bind_refuses_what_is_not_a_loaded_zlib_ng(tmp_path: Path) -> None:
    # A fresh copy: its functions are unbound until bind() succeeds.
    copy = build_extension(NATIVE_SOURCE, "asgiws.websocket._zlib_ng", tmp_path)
    ng = zlib_ng_module()
    with pytest.raises(RuntimeError, match="call bind"):
        copy.compressobj(6, 8, -15, 5)
    with pytest.raises(ImportError, match="is not loaded"):
        copy.bind(str(tmp_path / "missing.so"), ng.error)
    # Loaded, but no zlib-ng in it: our own extension.
    with pytest.raises(ImportError, match="does not export zlibng_version"):
        copy.bind(copy.__file__, ng.error)
    with pytest.raises(TypeError, match="exception class"):
        copy.bind(ng.__file__, object)
    assert copy.bind(ng.__file__, ng.error) == ng.ZLIBNG_VERSION
    with pytest.raises(RuntimeError, match="already bound"):
        copy.bind(ng.__file__, ng.error)
    assert copy.compressobj(6, 8, -15, 5).flush(SYNC) == b"\x00" + TAIL  # an empty stored block


def chosen(env: dict[str, str]) -> str:
    """What a fresh process's deflate.py compresses with, `env` added to ours."""
    return printed_by("from asgiws.websocket import deflate; print(deflate.codecs.__name__)", env)


def test_the_server_compresses_on_the_native_api_unless_told_otherwise() -> None:
    # `make test` installs the package with its extensions built.
    assert chosen({"ASGIWS_NO_EXTENSIONS": "", "ASGIWS_ZLIB": ""}) == "asgiws.websocket._zlib_ng"
    assert chosen({"ASGIWS_NO_EXTENSIONS": "1", "ASGIWS_ZLIB": ""}) == "zlib_ng.zlib_ng"
    assert chosen({"ASGIWS_NO_EXTENSIONS": "", "ASGIWS_ZLIB": "stdlib"}) == "zlib"
