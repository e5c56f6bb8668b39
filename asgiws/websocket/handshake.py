"""The opening handshake (RFC 6455 section 4), both sides, without I/O."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from asgiws.websocket.deflate import DeflateOptions, DeflateParams, client_accept
from asgiws.websocket.errors import HandshakeError, InvalidResponse
from asgiws.websocket.headers import Headers, is_token, split_list

RawHeaders = list[tuple[bytes, bytes]]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION_HEADER = (b"sec-websocket-version", b"13")


def accept_key(key: str | bytes) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (4.2.2 step 5.4)."""
    if isinstance(key, str):
        key = key.encode("ascii")
    # binascii directly: base64.b64encode is a Python wrapper around it.
    return binascii.b2a_base64(hashlib.sha1(key + GUID).digest(), newline=False).decode("ascii")


def generate_key() -> str:
    """4.1: "a randomly selected 16-byte value that has been base64-encoded"."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


class ClientHandshake(NamedTuple):
    """What a valid upgrade request asks for.  (A named tuple, immutable as
    a frozen dataclass is, and built in a tenth of its time: one per
    handshake.)"""

    key: str
    subprotocols: list[str]
    extensions: list[str]  # raw Sec-WebSocket-Extensions values, for deflate.negotiate
    origin: str | None


_HANDSHAKE_FIELDS = {
    name.encode(): name
    for name in (
        "host",
        "upgrade",
        "connection",
        "sec-websocket-version",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "origin",
    )
}


def _handshake_fields(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """The values of the fields the opening handshake reads, by lower-case
    name, as `Headers.by_name()` gives them: one pass that decodes only
    those (the request's other fields are left as bytes)."""
    found: dict[str, list[str]] = {}
    fields = _HANDSHAKE_FIELDS
    for name, value in headers:
        # (Names come lower-cased from the wire check and h11: lower() only
        # for a name not found as it is.)
        key = fields.get(name) or fields.get(name.lower())
        if key is not None:
            values = found.get(key)
            if values is None:
                found[key] = [value.decode("latin-1")]
            else:
                values.append(value.decode("latin-1"))
    return found


def _only(found: Mapping[str, list[str]], name: str, key: str) -> str | None:
    """The one value of header `name` (`key`: the name lower-cased)."""
    values = found.get(key, ())
    if len(values) > 1:
        raise HandshakeError(400, f"more than one {name} header")
    return values[0] if values else None


def _elements(values: Iterable[str]) -> list[str]:
    """The elements of comma-separated lists (`split_list`) of every value."""
    return [item for value in values for item in split_list(value)]


def _lower_elements(values: Iterable[str]) -> list[str]:
    """`_elements`, lower-cased: for tokens compared case-insensitively."""
    return [item.lower() for value in values for item in split_list(value)]


def _bad(reason: str) -> HandshakeError:
    return HandshakeError(400, reason)


def validate_request(
    method: str, http_version: str, headers: Headers | Iterable[tuple[bytes, bytes]]
) -> ClientHandshake:
    """Server: check an upgrade request (4.2.1) or raise HandshakeError.

    400 with a reason naming the problem; 426 with `Sec-WebSocket-Version: 13`
    for another protocol version (4.4).
    """
    # 4.2.1.1: "An HTTP/1.1 or higher GET request"
    if method != "GET":
        raise HandshakeError(400, f"WebSocket upgrade needs GET, not {method}")
    if http_version != "1.1":
        try:
            major, _, minor = http_version.partition(".")
            if (int(major), int(minor or 0)) < (1, 1):
                raise ValueError
        except ValueError:
            raise _bad(
                f"WebSocket upgrade needs HTTP/1.1 or higher, not HTTP/{http_version}"
            ) from None
    # 4.2.1.2: "A |Host| header field containing the server's authority."
    found = headers.by_name() if isinstance(headers, Headers) else _handshake_fields(headers)
    hosts = found.get("host", ())
    if len(hosts) != 1:
        raise _bad("exactly one Host header is required")
    # 4.2.1.3: "An |Upgrade| header field containing the value "websocket",
    # treated as an ASCII case-insensitive value."
    # (Most requests send the one value alone: compared without the lists.)
    upgrade = found.get("upgrade", ())
    if not (len(upgrade) == 1 and upgrade[0].lower() == "websocket") and (
        "websocket" not in _lower_elements(upgrade)
    ):
        raise _bad("missing 'Upgrade: websocket' header")
    # 4.2.1.4: "A |Connection| header field that includes the token "Upgrade",
    # treated as an ASCII case-insensitive value."
    connection = found.get("connection", ())
    if not (len(connection) == 1 and connection[0].lower() == "upgrade") and (
        "upgrade" not in _lower_elements(connection)
    ):
        raise _bad("missing 'Connection: Upgrade' header")
    # 4.2.1.6: "A |Sec-WebSocket-Version| header field, with a value of 13."
    # 4.4: "If this version does not match a version understood by the server,
    # the server MUST abort the WebSocket handshake ... and instead send an
    # appropriate HTTP error code (such as 426 Upgrade Required) and a
    # |Sec-WebSocket-Version| header field indicating the version(s) the
    # server is capable of understanding."
    # One version, not a list: "13, 8" is another protocol version.
    versions = found.get("sec-websocket-version", [])
    if len(versions) != 1 or versions[0].strip() != "13":
        got = ", ".join(versions) or "none"
        raise HandshakeError(
            426, f"unsupported Sec-WebSocket-Version ({got}), need 13", [VERSION_HEADER]
        )
    # 4.2.1.5: "A |Sec-WebSocket-Key| header field with a base64-encoded value
    # that, when decoded, is 16 bytes in length."
    keys = found.get("sec-websocket-key", ())
    if len(keys) != 1:
        _only(found, "Sec-WebSocket-Key", "sec-websocket-key")  # more than one: 400
        raise _bad("missing Sec-WebSocket-Key header")
    key = keys[0].strip()
    # Strict base64 of 16 bytes is exactly 22 characters of the alphabet and
    # "==" (what base64.b64decode(validate=True) then a length of 16 accept).
    if _KEY.fullmatch(key) is None:
        raise _bad("Sec-WebSocket-Key is not the base64 encoding of 16 bytes")
    protocols = found.get("sec-websocket-protocol")
    origins = found.get("origin")
    # tuple.__new__ straight: the named tuple's __new__ is a Python function
    # that only forwards to it.
    return _new_tuple(
        ClientHandshake,
        (
            key,
            _elements(protocols) if protocols else [],  # subprotocols
            list(found.get("sec-websocket-extensions", ())),  # extensions
            # (None without one; _only() refuses more than one.)
            origins[0] if origins and len(origins) == 1 else _only(found, "Origin", "origin"),
        ),
    )


_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")
_new_tuple = tuple.__new__


def check_origin(origin: str | None, allowed: Sequence[str | None]) -> None:
    """Raise HandshakeError(403) when `allowed` is non-empty and `origin` is
    not in it (10.2: servers "can reject" unwanted origins).  None in
    `allowed` lets in a request without an Origin header, as in websockets."""
    if allowed and origin not in allowed:
        raise HandshakeError(403, f"origin {origin!r} is not allowed")


def accept_headers(
    key: str,
    subprotocol: str | None = None,
    extensions_value: str | None = None,
    extra_headers: RawHeaders | None = None,
) -> RawHeaders:
    """Headers of the 101 Switching Protocols response (4.2.2 step 5)."""
    # (accept_key, written out: once per handshake.)
    digest = hashlib.sha1(key.encode("ascii") + GUID).digest()
    headers: RawHeaders = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", binascii.b2a_base64(digest, newline=False)),
    ]
    if subprotocol is not None:
        headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
    if extensions_value:
        headers.append((b"sec-websocket-extensions", extensions_value.encode("latin-1")))
    if extra_headers:
        headers.extend(extra_headers)
    return headers


# --- client -----------------------------------------------------------------------


def client_request_headers(
    host: str,
    key: str,
    *,
    subprotocols: list[str] | None = None,
    extensions_value: str | None = None,
    origin: str | None = None,
    extra_headers: RawHeaders | None = None,
) -> RawHeaders:
    """The headers of a client's opening handshake (4.1), in the order they
    go on the wire; raises ValueError for a header that cannot be sent."""
    headers: RawHeaders = [
        (b"Host", host.encode("idna" if not host.isascii() else "ascii")),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", key.encode("ascii")),
        (b"Sec-WebSocket-Version", b"13"),
    ]
    if origin is not None:
        headers.append((b"Origin", origin.encode("latin-1")))
    if subprotocols:
        for p in subprotocols:
            if not is_token(p):
                raise ValueError(f"subprotocol {p!r} is not a token")
        headers.append((b"Sec-WebSocket-Protocol", ", ".join(subprotocols).encode("ascii")))
    if extensions_value:
        headers.append((b"Sec-WebSocket-Extensions", extensions_value.encode("latin-1")))
    for name, value in extra_headers or []:
        if b"\r" in name + value or b"\n" in name + value:
            raise ValueError("header names and values may not contain CR or LF")
        headers.append((name, value))
    return headers


def build_request(
    host: str,
    resource: str,
    key: str,
    *,
    subprotocols: list[str] | None = None,
    extensions_value: str | None = None,
    origin: str | None = None,
    extra_headers: RawHeaders | None = None,
) -> bytes:
    """The full request head of a client's opening handshake (4.1), for
    callers without an HTTP library (asgiws's client has h11 write it)."""
    headers = client_request_headers(
        host,
        key,
        subprotocols=subprotocols,
        extensions_value=extensions_value,
        origin=origin,
        extra_headers=extra_headers,
    )
    lines = [f"GET {resource} HTTP/1.1".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def validate_response(
    status: int,
    headers: RawHeaders,
    key: str,
    *,
    offered_subprotocols: list[str] | None = None,
    deflate_options: DeflateOptions | None = None,
) -> tuple[str | None, DeflateParams | None]:
    """Client: check the server's answer (4.1, "the client MUST validate the
    server's response") -> (subprotocol, deflate params); or raise
    InvalidResponse carrying the server's status and headers."""

    def bad(reason: str) -> InvalidResponse:
        return InvalidResponse(status, reason, headers)

    # 4.1: "If the status code received from the server is not 101, the client
    # handles the response per HTTP [RFC2616] procedures."
    if status != 101:
        raise bad(f"server refused the WebSocket upgrade with HTTP {status}")
    index = Headers(headers)
    # 4.1: "If the response lacks an |Upgrade| header field or the |Upgrade|
    # header field contains a value that is not an ASCII case-insensitive
    # match for the value "websocket", the client MUST _Fail the WebSocket
    # Connection_."
    upgrade = [t.lower() for t in index.get_list("upgrade")]
    if upgrade != ["websocket"]:
        raise bad("response lacks 'Upgrade: websocket'")
    # "If the response lacks a |Connection| header field or the |Connection|
    # header field doesn't contain a token that is an ASCII case-insensitive
    # match for the value "Upgrade", the client MUST _Fail the WebSocket
    # Connection_."
    connection = [t.lower() for t in index.get_list("connection")]
    if "upgrade" not in connection:
        raise bad("response lacks 'Connection: Upgrade'")
    # "If the response lacks a |Sec-WebSocket-Accept| header field or the
    # |Sec-WebSocket-Accept| contains a value other than the base64-encoded
    # SHA-1 of the concatenation of the |Sec-WebSocket-Key| ... with the
    # string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ... the client MUST _Fail
    # the WebSocket Connection_."
    accepts = index.get_all("sec-websocket-accept")
    if [a.strip() for a in accepts] != [accept_key(key)]:
        raise bad("wrong or missing Sec-WebSocket-Accept")
    # "If the response includes a |Sec-WebSocket-Protocol| header field and
    # this header field indicates the use of a subprotocol that was not
    # present in the client's handshake ..., the client MUST _Fail the
    # WebSocket Connection_."
    protocols = index.get_list("sec-websocket-protocol")
    subprotocol: str | None = None
    if protocols:
        if len(protocols) != 1 or protocols[0] not in (offered_subprotocols or []):
            raise bad(f"server chose a subprotocol we did not offer: {', '.join(protocols)}")
        subprotocol = protocols[0]
    # "If the response includes a |Sec-WebSocket-Extensions| header field and
    # this header field indicates the use of an extension that was not present
    # in the client's handshake ..., the client MUST _Fail the WebSocket
    # Connection_."
    extensions = index.get_all("sec-websocket-extensions")
    params: DeflateParams | None = None
    if extensions:
        if deflate_options is None:
            raise bad("server accepted an extension we did not offer")
        try:
            params = client_accept(", ".join(extensions), deflate_options)
        except InvalidResponse as exc:
            raise bad(exc.reason) from None
    return subprotocol, params
