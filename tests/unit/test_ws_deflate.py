"""permessage-deflate: negotiation with every RFC 7692 parameter, the 8-bit
window, bounded inflate, and interop with websockets' sans-I/O protocol.

What compresses runs on each zlib the server may use (the `backend` fixture):
the standard library's, zlib-ng's module, which the `standard` extra
installs, and zlib-ng's native API through our `_zlib_ng` extension."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from asgiws.config import Config
from asgiws.options import connection_options, connection_options_from_keywords
from asgiws.websocket import (
    BytesMessage,
    ClientEngine,
    ConnectionFailed,
    DeflateOptions,
    DeflateParams,
    HandshakeError,
    InvalidResponse,
    ServerEngine,
    TextMessage,
    accept_headers,
    build_request,
    client_accept,
    client_offer,
    generate_key,
    negotiate,
    validate_request,
    validate_response,
)
from asgiws.websocket import deflate as deflate_module
from asgiws.websocket.deflate import (
    DEFAULT_SERVER_MAX_WINDOW_BITS,
    RFC_MAX_WINDOW_BITS,
    MessageDeflate,
    shared_compressor,
)
from asgiws.websocket.zlib_backend import import_zlib_ng
from tests.unit.c_build import build_extension

NATIVE_SOURCE = Path(deflate_module.__file__).parent / "_zlib_ng.c"

# A server that allows the full window: the negotiation below then follows the
# offer alone.
D = DeflateOptions(server_max_window_bits=RFC_MAX_WINDOW_BITS)


def full_window(**changes: Any) -> DeflateOptions:
    """D with some settings changed."""
    return dataclasses.replace(D, **changes)


def zlib_ng_module() -> ModuleType:
    """zlib-ng's zlib module; without the package a failure (never a skip:
    `make test` installs the `standard` extra that brings it)."""
    module = import_zlib_ng()
    if module is None:
        pytest.fail("zlib-ng is not installed (the standard extra): run `make test`")
    return module


@functools.cache
def native_zlib_ng() -> ModuleType:
    """Our `_zlib_ng` extension built from source (see `c_build`: tested
    whether or not the package build compiled it) and bound to zlib-ng."""
    directory = Path(tempfile.mkdtemp(prefix="asgiws-zlib-ng-"))
    module = build_extension(NATIVE_SOURCE, "asgiws.websocket._zlib_ng", directory)
    ng = zlib_ng_module()
    assert ng.__file__ is not None
    module.bind(ng.__file__, ng.error)
    return module


@pytest.fixture(params=["stdlib", "zlib-ng", "zlib-ng-native"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Where permessage-deflate's compressors and decompressors come from
    for this test, each in turn (the zlib API's compressobj/decompressobj)."""
    module = zlib if request.param == "stdlib" else zlib_ng_module()
    monkeypatch.setattr(deflate_module, "zlib", module)
    if request.param == "zlib-ng-native":
        codecs = native_zlib_ng()
        frame_builder = codecs.deflate_frame
    else:
        codecs = module
        frame_builder = deflate_module.c_deflate_frame or deflate_module.python_deflate_frame
    monkeypatch.setattr(deflate_module, "codecs", codecs)
    monkeypatch.setattr(deflate_module, "deflate_frame", frame_builder)
    return codecs


# Hypothesis runs every example under one `backend`: that fixture is constant.
ONE_BACKEND_PER_TEST = [HealthCheck.function_scoped_fixture]


def backend_chosen(env: dict[str, str]) -> str:
    """The backend a fresh process picks with `env` added to ours."""
    return printed_by("from asgiws.websocket.zlib_backend import NAME; print(NAME)", env)


def printed_by(code: str, env: dict[str, str]) -> str:
    """What a fresh process running `code` prints, `env` added to ours."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout.strip()


def test_zlib_ng_is_used_when_installed_unless_asgiws_zlib_says_stdlib() -> None:
    ng = zlib_ng_module()
    assert backend_chosen({"ASGIWS_ZLIB": ""}) == f"zlib-ng {ng.ZLIBNG_VERSION}"
    assert backend_chosen({"ASGIWS_ZLIB": "stdlib"}) == f"zlib {zlib.ZLIB_RUNTIME_VERSION}"


def test_config_defaults_are_the_engines_defaults() -> None:
    # One default per setting: Config declares the engine's, the client's
    # keyword options (built from Config's declarations) get the same.
    config = Config()
    assert connection_options(config).deflate == DeflateOptions()
    assert connection_options_from_keywords().deflate == DeflateOptions()
    assert (config.ws_deflate_level, config.ws_deflate_mem_level) == (
        DeflateOptions().level,
        DeflateOptions().mem_level,
    )
    assert DeflateParams().mem_level == DeflateOptions().mem_level


@pytest.mark.parametrize(
    "offer, options, response, params",
    [
        ("permessage-deflate", D, "permessage-deflate", DeflateParams()),
        (
            # the client lets us choose: websockets' 12 bits unless configured
            "permessage-deflate; client_max_window_bits",
            D,
            "permessage-deflate; client_max_window_bits=12",
            DeflateParams(client_max_window_bits=12),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            full_window(client_max_window_bits=15),
            "permessage-deflate; client_max_window_bits=15",
            DeflateParams(),
        ),
        (
            # the smaller of the client's limit and our default
            "permessage-deflate; client_max_window_bits=14",
            D,
            "permessage-deflate; client_max_window_bits=12",
            DeflateParams(client_max_window_bits=12),
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            D,
            "permessage-deflate; client_max_window_bits=10",
            DeflateParams(client_max_window_bits=10),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            full_window(client_max_window_bits=10),
            "permessage-deflate; client_max_window_bits=10",
            DeflateParams(client_max_window_bits=10),
        ),
        (
            # the client did not say it can limit its window: we may not ask
            "permessage-deflate",
            full_window(client_max_window_bits=10),
            "permessage-deflate",
            DeflateParams(),
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            D,
            "permessage-deflate; client_max_window_bits=12",
            DeflateParams(client_max_window_bits=12),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            D,
            "permessage-deflate; server_max_window_bits=10",
            DeflateParams(server_max_window_bits=10),
        ),
        (
            'permessage-deflate; server_max_window_bits="8"',
            D,
            "permessage-deflate; server_max_window_bits=8",
            DeflateParams(server_max_window_bits=8),
        ),
        (
            "permessage-deflate; server_max_window_bits=14",
            full_window(server_max_window_bits=12),
            "permessage-deflate; server_max_window_bits=12",
            DeflateParams(server_max_window_bits=12),
        ),
        (
            "permessage-deflate",
            full_window(server_max_window_bits=9),
            "permessage-deflate; server_max_window_bits=9",
            DeflateParams(server_max_window_bits=9),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            D,
            "permessage-deflate; server_no_context_takeover",
            DeflateParams(server_no_context_takeover=True),
        ),
        (
            "permessage-deflate",
            full_window(server_no_context_takeover=True, client_no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            D,
            "permessage-deflate; client_no_context_takeover",
            DeflateParams(client_no_context_takeover=True),
        ),
    ],
)
def test_negotiate_honours_every_parameter(
    offer: str, options: DeflateOptions, response: str, params: DeflateParams
) -> None:
    result = negotiate([offer], options)
    assert result is not None
    assert result[0] == response
    assert result[1] == DeflateParams(
        params.server_no_context_takeover,
        params.client_no_context_takeover,
        params.server_max_window_bits,
        params.client_max_window_bits,
        options.level,
        options.mem_level,
    )


@pytest.mark.parametrize(
    "bad_offer",
    [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; unknown_param",
    ],
)
def test_invalid_offers_are_declined_and_the_next_one_accepted(bad_offer: str) -> None:
    assert negotiate([bad_offer], D) is None
    result = negotiate([bad_offer, "x-other, permessage-deflate; server_no_context_takeover"], D)
    assert result is not None and result[1].server_no_context_takeover


def test_first_acceptable_offer_wins_and_other_extensions_are_skipped() -> None:
    result = negotiate(
        [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=9, permessage-deflate",
        ],
        D,
    )
    assert result is not None and result[1].server_max_window_bits == 9
    assert negotiate(["x-webkit-deflate-frame"], D) is None
    with pytest.raises(HandshakeError) as info:
        negotiate(["permessage-deflate; =bad"], D)
    assert info.value.status == 400


def test_client_offer_strings() -> None:
    assert client_offer(D) == "permessage-deflate; client_max_window_bits"
    assert (
        client_offer(
            full_window(
                server_max_window_bits=10,
                client_max_window_bits=9,
                server_no_context_takeover=True,
                client_no_context_takeover=True,
            )
        )
        == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9"
    )


def test_client_accept_good_answers() -> None:
    assert client_accept("permessage-deflate", D) == DeflateParams()
    params = client_accept(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=8; client_max_window_bits=9",
        D,
    )
    assert params == DeflateParams(True, True, 8, 9)
    # our own window limit applies even when the server does not repeat it
    assert (
        client_accept(
            "permessage-deflate", full_window(client_max_window_bits=10)
        ).client_max_window_bits
        == 10
    )


@pytest.mark.parametrize(
    "answer, options",
    [
        ("permessage-deflate; server_max_window_bits=16", D),
        ("permessage-deflate; server_max_window_bits", D),
        ("permessage-deflate; client_max_window_bits", D),
        (
            "permessage-deflate; client_max_window_bits=12",
            full_window(client_max_window_bits=10),
        ),
        (
            "permessage-deflate; server_max_window_bits=12",
            full_window(server_max_window_bits=10),
        ),
        ("permessage-deflate", full_window(server_max_window_bits=10)),
        ("permessage-deflate", full_window(server_no_context_takeover=True)),
        ("permessage-deflate; unknown", D),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", D),
        ("permessage-deflate, permessage-deflate", D),
        ("x-other", D),
        ("permessage-deflate; =", D),
    ],
)
def test_client_accept_rejects_bad_answers(answer: str, options: DeflateOptions) -> None:
    with pytest.raises(InvalidResponse):
        client_accept(answer, options)


@settings(max_examples=60, deadline=None, suppress_health_check=ONE_BACKEND_PER_TEST)
@given(
    data=st.lists(st.binary(max_size=3000) | st.text(max_size=500).map(str.encode), max_size=6),
    level=st.integers(0, 9),
)
def test_compressing_with_an_8_bit_window_fits_an_8_bit_inflater(
    backend: ModuleType, data: list[bytes], level: int
) -> None:
    # Neither zlib nor zlib-ng deflates with wbits=8, we use 9: the distances
    # of either stay <= 250 at every level (each has its own level strategies).
    codec = MessageDeflate(DeflateParams(server_max_window_bits=8, level=level), is_server=True)
    inflaters = [zlib.decompressobj(wbits=-8), backend.decompressobj(wbits=-8)]
    for message in data:
        sample = message * 3 + bytes(range(256)) + message
        compressed = codec.compress(sample) + b"\x00\x00\xff\xff"
        assert [inflater.decompress(compressed) for inflater in inflaters] == [sample, sample]


def test_inflate_stops_at_the_limit(backend: ModuleType) -> None:
    codec = MessageDeflate(DeflateParams(), is_server=True)
    compressor = zlib.compressobj(wbits=-15)
    bomb = compressor.compress(b"\x00" * 5_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(Exception) as info:
        codec.decompress(bomb, 1000)
    assert getattr(info.value, "code", None) == 1009


@pytest.mark.parametrize("cut", [None, 500])
def test_engine_refuses_a_bomb_with_1009_holding_about_the_limit(
    backend: ModuleType, cut: int | None
) -> None:
    # Whole (the scanner's path) or in pieces (inflated chunk by chunk).
    params = DeflateParams()
    client, server = ClientEngine(deflate=params), ServerEngine(max_size=2**20, deflate=params)
    stream = b"".join(client.send_binary(bytes(10_000_000)))
    assert len(stream) < 20_000
    pieces = [stream] if cut is None else [stream[:cut], stream[cut:]]
    tracemalloc.start()
    try:
        events = [event for piece in pieces for event in server.receive_data(piece)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(type(e), getattr(e, "code", None)) for e in events] == [(ConnectionFailed, 1009)]
    assert peak < 4 * 2**20  # about the limit, not the 10 MB it would inflate to


@pytest.mark.parametrize("cut", [None, 10])
def test_corrupt_compressed_data_fails_with_1007(backend: ModuleType, cut: int | None) -> None:
    # The backend raises its own error class (zlib-ng's is not zlib's).
    params = DeflateParams()
    client, server = ClientEngine(deflate=params), ServerEngine(deflate=params)
    client_frames = ClientEngine(deflate=None)  # the same frame, RSV1 set by hand
    frame = bytearray(b"".join(client_frames.send_binary(b"\xff\xff\xff\xff" * 3)))
    frame[0] |= 0x40  # RSV1: "compressed", but these bytes are no deflate stream
    assert server.receive_data(b"".join(client.send_text("fine"))) == [TextMessage("fine")]
    pieces = [bytes(frame)] if cut is None else [bytes(frame[:cut]), bytes(frame[cut:])]
    events = [event for piece in pieces for event in server.receive_data(piece)]
    assert [(type(e), getattr(e, "code", None)) for e in events] == [(ConnectionFailed, 1007)]


def test_shared_compressor_messages_stand_alone(backend: ModuleType) -> None:
    # The hub sends one compressed frame to every connection with the key:
    # each message must inflate with a fresh window, whatever came before.
    compressor = shared_compressor((6, 5, 12))
    texts = [b"all subscribers get this, all subscribers " * 20, b"and this" * 30] * 2
    for text in texts:
        alone = zlib.decompressobj(wbits=-12)
        assert alone.decompress(compressor.compress(text) + b"\x00\x00\xff\xff") == text


def test_no_context_takeover_resets_the_compressor(backend: ModuleType) -> None:
    text = b"some repeated words, some repeated words " * 10
    reset = MessageDeflate(DeflateParams(server_no_context_takeover=True), is_server=True)
    keep = MessageDeflate(DeflateParams(), is_server=True)
    assert reset.compress(text) == reset.compress(text)
    first = keep.compress(text)
    assert len(keep.compress(text)) < len(first)


# --- interop with websockets' sans-I/O protocol ------------------------------------


def http_response(status_line: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return status_line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"


def parse_head(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    headers = [line.split(b":", 1) for line in head[1:]]
    return head[0], [(k.strip().lower(), v.strip()) for k, v in headers]


def messages(frames: list[Frame]) -> list[str | bytes]:
    """Join websockets' data frames into messages."""
    out: list[str | bytes] = []
    parts: list[bytes] = []
    kind = Opcode.TEXT
    for frame in frames:
        if isinstance(frame, Frame) and frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode != Opcode.CONT:
                kind = frame.opcode
            parts.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(parts)
                out.append(data.decode() if kind == Opcode.TEXT else data)
                parts = []
    return out


TRAFFIC: list[str | bytes] = ["hello " * 100, b"\x00\x01" * 3000, "", "é" * 1000, "hello " * 100]

client_factories = [
    dict(),
    dict(server_no_context_takeover=True),
    dict(client_no_context_takeover=True),
    dict(server_max_window_bits=8),
    dict(server_max_window_bits=11, client_max_window_bits=9),
    dict(client_max_window_bits=15, server_max_window_bits=15),
    dict(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=12,
    ),
]


@pytest.mark.parametrize("factory_kwargs", client_factories)
@pytest.mark.parametrize(
    "options",
    [
        D,
        full_window(
            server_max_window_bits=9, client_max_window_bits=10, server_no_context_takeover=True
        ),
    ],
)
def test_websockets_client_against_our_server(
    backend: ModuleType, factory_kwargs: dict[str, Any], options: DeflateOptions
) -> None:
    peer = ClientProtocol(
        parse_uri("ws://example.com/ws"),
        extensions=[ClientPerMessageDeflateFactory(**factory_kwargs)],
    )
    peer.send_request(peer.connect())
    request_line, headers = parse_head(peer.data_to_send()[0])
    assert request_line.startswith(b"GET /ws ")
    hs = validate_request("GET", "1.1", headers)
    negotiated = negotiate(hs.extensions, options)
    assert negotiated is not None
    response_value, params = negotiated
    peer.receive_data(
        http_response(
            b"HTTP/1.1 101 Switching Protocols", accept_headers(hs.key, None, response_value)
        )
    )
    assert peer.state is State.OPEN, peer.handshake_exc
    server = ServerEngine(deflate=params)
    out: list[bytes] = []
    for msg in TRAFFIC:
        out += server.send_text(msg) if isinstance(msg, str) else server.send_binary(msg)
    peer.receive_data(b"".join(out))
    assert messages(peer.events_received()) == TRAFFIC  # type: ignore[arg-type]
    for msg in TRAFFIC:
        if isinstance(msg, str):
            peer.send_text(msg.encode())
        else:
            peer.send_binary(msg)
    events = server.receive_data(b"".join(peer.data_to_send()))
    assert events == [TextMessage(m) if isinstance(m, str) else BytesMessage(m) for m in TRAFFIC]


server_factories = [
    dict(),
    dict(server_no_context_takeover=True, client_no_context_takeover=True),
    dict(server_max_window_bits=9, client_max_window_bits=8),
    dict(server_max_window_bits=12, client_max_window_bits=15),
]


@pytest.mark.parametrize("factory_kwargs", server_factories)
@pytest.mark.parametrize(
    "options",
    [
        D,
        full_window(client_max_window_bits=9, server_max_window_bits=10),
        full_window(client_no_context_takeover=True),
    ],
)
def test_our_client_against_websockets_server(
    backend: ModuleType, factory_kwargs: dict[str, Any], options: DeflateOptions
) -> None:
    peer = ServerProtocol(extensions=[ServerPerMessageDeflateFactory(**factory_kwargs)])
    key = generate_key()
    peer.receive_data(
        build_request("example.com", "/", key, extensions_value=client_offer(options))
    )
    [request] = peer.events_received()
    peer.send_response(peer.accept(request))  # type: ignore[arg-type]
    status_line, headers = parse_head(peer.data_to_send()[0])
    assert status_line.startswith(b"HTTP/1.1 101"), status_line
    _, params = validate_response(101, headers, key, deflate_options=options)
    assert params is not None
    client = ClientEngine(deflate=params)
    out: list[bytes] = []
    for msg in TRAFFIC:
        out += client.send_text(msg) if isinstance(msg, str) else client.send_binary(msg)
    out += client.send_fragment("frag" * 100, fin=False) + client.send_fragment(
        "ment" * 100, fin=True
    )
    peer.receive_data(b"".join(out))
    assert messages(peer.events_received()) == [*TRAFFIC, "frag" * 100 + "ment" * 100]  # type: ignore[arg-type]
    for msg in TRAFFIC:
        if isinstance(msg, str):
            peer.send_text(msg.encode())
        else:
            peer.send_binary(msg)
    events = client.receive_data(b"".join(peer.data_to_send()))
    assert events == [TextMessage(m) if isinstance(m, str) else BytesMessage(m) for m in TRAFFIC]


# --- permessage-deflate on the extension interface (asgiws.extensions) ----------------


def test_extension_factories_negotiate_like_the_engine() -> None:
    from asgiws.extensions import (
        ClientPerMessageDeflateFactory,
        PerMessageDeflate,
        ServerPerMessageDeflateFactory,
    )

    client = ClientPerMessageDeflateFactory(client_max_window_bits=10)
    server = ServerPerMessageDeflateFactory(
        server_max_window_bits=11, compress_settings={"level": 3, "memLevel": 4}
    )
    offer = client.get_request_params()
    # (the engine's default asks for its own default server window)
    bits = str(DEFAULT_SERVER_MAX_WINDOW_BITS)
    assert offer == [("server_max_window_bits", bits), ("client_max_window_bits", "10")]
    response, server_ext = server.process_request_params(offer, [])
    assert response == [("server_max_window_bits", "11"), ("client_max_window_bits", "10")]
    client_ext = client.process_response_params(response, [])
    assert isinstance(server_ext, PerMessageDeflate) and isinstance(client_ext, PerMessageDeflate)
    assert server_ext.params.level == 3 and server_ext.params.mem_level == 4
    assert client_ext.params.server_max_window_bits == 11


def test_extension_factories_refuse_what_they_cannot_accept() -> None:
    from asgiws.exceptions import NegotiationError
    from asgiws.extensions import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

    server = ServerPerMessageDeflateFactory()
    with pytest.raises(NegotiationError):
        server.process_request_params([("x_unknown", None)], [])
    client = ClientPerMessageDeflateFactory(server_no_context_takeover=True)
    with pytest.raises(NegotiationError):
        client.process_response_params([], [])  # the requested parameter was not accepted
    with pytest.raises(TypeError):
        ServerPerMessageDeflateFactory(window=9)


def test_extension_encode_and_decode_frames_match_the_engine(backend: ModuleType) -> None:
    from asgiws.exceptions import PayloadTooBig
    from asgiws.extensions import Frame, PerMessageDeflate
    from asgiws.websocket.deflate import DeflateParams

    params = DeflateParams(server_max_window_bits=12)
    server, client = (
        PerMessageDeflate(params, is_server=True),
        PerMessageDeflate(params, is_server=False),
    )
    text = b"hello hello hello hello"
    # The engine's compressed message and the extension's frame agree.
    engine_payload = params.codec(is_server=True).compress(text)
    encoded = server.encode(Frame(0x1, text))
    assert encoded.rsv1 and encoded.data == engine_payload
    assert client.decode(encoded) == Frame(0x1, text)
    # A fragmented message: RSV1 on the first frame only; both fragments inflate.
    first = server.encode(Frame(0x2, b"a" * 100, fin=False))
    last = server.encode(Frame(0x0, b"b" * 100))
    assert first.rsv1 and not last.rsv1
    assert client.decode(first).data + client.decode(last).data == b"a" * 100 + b"b" * 100
    # Control frames and uncompressed messages pass untouched; the bound holds.
    assert client.decode(Frame(0x9, b"ping")) == Frame(0x9, b"ping")
    assert client.decode(Frame(0x1, b"plain")) == Frame(0x1, b"plain")
    with pytest.raises(PayloadTooBig):
        client.decode(server.encode(Frame(0x2, b"z" * 10_000)), max_size=1000)
