"""Seed inputs for each fuzz target, built from the cases the unit tests use.

Generated at run time (nothing binary in the repository): valid inputs of
every shape the parsers know, plus the classic broken ones, so the fuzzer
starts deep inside each parser instead of at its first byte check.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from asgiws.websocket.frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, encode_frame

# A zero key leaves the payload readable, so the fuzzer can mutate it directly.
_ZERO_MASK = b"\x00\x00\x00\x00"
_MASK = b"\x37\xfa\x21\x3d"


def _frames(frames: Sequence[tuple[int, bytes, bool, bool]], mask: bytes | None) -> bytes:
    return b"".join(
        b"".join(encode_frame(op, payload, fin=fin, rsv1=rsv1, mask=mask))
        for op, payload, fin, rsv1 in frames
    )


def _compress(messages: list[bytes], wbits: int = 15) -> list[bytes]:
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    return [(c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH))[:-4] for m in messages]


def ws_engine_seeds() -> list[bytes]:
    plain = [
        [(TEXT, "κόσμε".encode(), True, False), (BINARY, b"\x00\x01\x02", True, False)],
        [(TEXT, b"frag", False, False), (PING, b"p", True, False), (CONT, b"ment", True, False)],
        [(BINARY, b"x" * 200, True, False), (CLOSE, b"\x03\xe8bye", True, False)],
        [(TEXT, b"bad \xc0\xaf", True, False)],
        [(PONG, b"", True, False), (CLOSE, b"\x03\xe9", True, False), (TEXT, b"late", True, False)],
        [(CLOSE, b"\x03", True, False)],
    ]
    compressed_payloads = _compress([b"hello hello hello", b"hello again", b"\x00" * 5000])
    compressed = [
        [(TEXT, compressed_payloads[0], True, True), (TEXT, compressed_payloads[1], True, True)],
        [(BINARY, compressed_payloads[2], True, True)],
        [
            (TEXT, compressed_payloads[0][:3], False, True),
            (CONT, compressed_payloads[0][3:], True, False),
        ],
        [(TEXT, b"\xff\xff" + compressed_payloads[0], True, True)],
    ]
    seeds = []
    # flags (see targets.engine_setup): 0x00 server plain, 0x01 client plain,
    # 0x02 server deflate, 0x03 client deflate, 0x20 max_size 100.
    for stream in plain:
        seeds.append(bytes([0x30, 0]) + _frames(stream, _ZERO_MASK))
        seeds.append(bytes([0x20, 7]) + _frames(stream, _MASK))
        seeds.append(bytes([0x31, 3]) + _frames(stream, None))
    for stream in compressed:
        seeds.append(bytes([0xF2, 0]) + _frames(stream, _ZERO_MASK))
        seeds.append(bytes([0xE3, 5]) + _frames(stream, None))
        seeds.append(bytes([0x26, 1]) + _frames(stream, _ZERO_MASK))
    return seeds


def ws_handshake_seeds() -> list[bytes]:
    request = (
        "GET 1.1\nHost: example.com\nUpgrade: websocket\nConnection: keep-alive, Upgrade\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n"
        "Origin: http://example.com\nSec-WebSocket-Protocol: chat, superchat\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit\n"
    )
    response = (
        "101\nUpgrade: websocket\nConnection: Upgrade\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\nSec-WebSocket-Protocol: chat\n"
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12\n"
    )
    return [
        b"\x00" + request.encode(),
        b"\x00" + request.replace("13", "8").encode(),
        b"\x07" + response.encode(),
        b"\x01" + response.encode(),
        b"\x07" + b"403\nContent-Length: 0\n",
    ]


def ws_deflate_seeds() -> list[bytes]:
    offers = [
        b"permessage-deflate",
        b"permessage-deflate; client_max_window_bits",
        b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
        b'permessage-deflate; server_no_context_takeover; client_max_window_bits="12"',
        b"x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover",
    ]
    payloads = [
        *_compress([b"a message that repeats, a message that repeats"]),
        *_compress([b"\x00" * 4000]),
        *_compress([b"hello"], wbits=9),
        zlib.compress(b"stream with a final block", 9)[2:-4],  # BFINAL set
        b"\xff\xff\xff",
    ]
    return [
        bytes([flags, limit]) + offer + b"\n" + payload
        for flags, limit, offer, payload in zip(
            [0x00, 0x13, 0x2E, 0x05, 0x3C],
            [0x00, 0x11, 0x2A, 0x07, 0x0F],
            offers,
            payloads,
            strict=True,
        )
    ]


def http_parser_seeds() -> list[bytes]:
    heads = [
        b"GET /path?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x80",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        b"GET http://example.com/abs?x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
    ]
    return [
        bytes([piece]) + head
        for piece, head in zip([0, 1, 7, 3, 0, 11, 0, 5, 2, 0], heads, strict=True)
    ]


def uri_seeds() -> list[bytes]:
    return [
        b"ws://example.com/chat?room=1",
        b"wss://user:pa%20ss@[::1]:8443/p%C3%A9/?q",
        "ws://bücher.example/κόσμε".encode(),
        b"ws://127.0.0.1:0/",
        b"http://x/",
        b"ws://host/#frag",
    ]


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "ws_engine": ws_engine_seeds,
    "ws_handshake": ws_handshake_seeds,
    "ws_deflate": ws_deflate_seeds,
    "http_parser": http_parser_seeds,
    "uri": uri_seeds,
}
