"""Sec-WebSocket-Key (RFC 6455 4.2.1.5): "a base64-encoded value that,
when decoded, is 16 bytes in length" -- the handshake accepts exactly the
keys that strict base64 decoding turns into 16 bytes."""

from __future__ import annotations

import base64
import binascii
import os

import pytest

from asgiws.websocket.errors import HandshakeError
from asgiws.websocket.handshake import validate_request


def decodes_to_16_bytes(key: str) -> bool:
    try:
        return len(base64.b64decode(key.strip().encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


def accepted(key: str) -> bool:
    headers = [
        (b"host", b"h"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", key.encode("latin-1")),
    ]
    try:
        validate_request("GET", "1.1", headers)
    except HandshakeError as exc:
        assert exc.status == 400 and "16 bytes" in exc.reason
        return False
    return True


GOOD = base64.b64encode(bytes(range(16))).decode()
KEYS = [
    GOOD,
    f" {GOOD} ",  # optional whitespace around a field value
    GOOD[:21] + "B==",  # unused low bits set: base64 still decodes it
    GOOD[:22] + "=",
    GOOD[:22],
    GOOD + "AAAA",
    GOOD[:20] + "AAA=",  # 17 bytes
    GOOD[:20] + "-_==",  # the URL-safe alphabet is not base64's
    GOOD[:10] + " " + GOOD[11:],
    GOOD[:22] + "=\n",
    GOOD[:21] + "é==",
    "",
    "c2hvcnQ=",
    *(base64.b64encode(os.urandom(n)).decode() for n in (15, 16, 16, 17)),
]


@pytest.mark.parametrize("key", KEYS)
def test_a_key_is_accepted_when_it_decodes_to_16_bytes(key: str) -> None:
    assert accepted(key) is decodes_to_16_bytes(key)
