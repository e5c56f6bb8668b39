"""Opening handshake: server validation (400/426/403), the 101 headers, the
client request and the client's checks of the server's answer."""

from __future__ import annotations

import h11
import pytest
from wsproto import WSConnection
from wsproto import events as wse
from wsproto.connection import ConnectionType

from asgiws.websocket import (
    DeflateOptions,
    HandshakeError,
    InvalidResponse,
    accept_headers,
    accept_key,
    build_request,
    check_origin,
    generate_key,
    validate_request,
    validate_response,
)
from asgiws.websocket.headers import Headers, split_list

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RawHeaders = list[tuple[bytes, bytes]]


def request_headers(**changes: bytes | None) -> RawHeaders:
    base: dict[str, bytes | None] = {
        "host": b"example.com",
        "upgrade": b"websocket",
        "connection": b"Upgrade",
        "sec-websocket-key": KEY.encode(),
        "sec-websocket-version": b"13",
    }
    base.update({k.replace("_", "-"): v for k, v in changes.items()})
    return [(k.encode(), v) for k, v in base.items() if v is not None]


@pytest.mark.parametrize(
    ("value", "elements"),
    [
        ("a", ["a"]),
        (" a ,b\t, C ", ["a", "b", "C"]),
        (", ,a,, b ,", ["a", "b"]),  # RFC 9110 5.6.1: empty elements are ignored
        ("", []),
        (" , ", []),
    ],
)
def test_split_list(value: str, elements: list[str]) -> None:
    assert split_list(value) == elements


def test_headers_lookup_is_case_insensitive_and_multi_valued() -> None:
    import asgiws
    from asgiws import datastructures

    assert asgiws.Headers is datastructures.Headers is Headers
    headers = Headers(
        [(b"Connection", b"keep-alive, Upgrade"), (b"x-a", b"1"), (b"X-A", b"2"), (b"e", b"")]
    )
    assert headers["x-A"] == "1" and headers.get("missing") is None
    assert headers.get_all("X-a") == ["1", "2"]
    assert headers.get_list("connection") == ["keep-alive", "Upgrade"]
    assert headers.get_list("e") == [] and headers.get_list("missing") == []
    assert "CONNECTION" in headers and len(headers) == 3
    assert headers.raw[1] == (b"x-a", b"1")


def test_accept_key_matches_rfc_example() -> None:
    # RFC 6455 section 1.3
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request_with_everything() -> None:
    headers = request_headers(upgrade=b"WebSocket", connection=b"keep-alive, upgrade")
    headers += [
        (b"sec-websocket-protocol", b"chat, superchat"),
        (b"sec-websocket-protocol", b"v2"),
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
        (b"origin", b"https://example.com"),
    ]
    hs = validate_request("GET", "1.1", headers)
    assert hs.key == KEY
    assert hs.subprotocols == ["chat", "superchat", "v2"]
    assert hs.extensions == ["permessage-deflate; client_max_window_bits"]
    assert hs.origin == "https://example.com"


@pytest.mark.parametrize(
    "method, version, changes, words",
    [
        ("POST", "1.1", {}, "GET"),
        ("GET", "1.0", {}, "HTTP/1.1"),
        ("GET", "1.1", {"host": None}, "Host"),
        ("GET", "1.1", {"upgrade": None}, "Upgrade"),
        ("GET", "1.1", {"upgrade": b"h2c"}, "Upgrade"),
        ("GET", "1.1", {"connection": b"keep-alive"}, "Connection"),
        ("GET", "1.1", {"sec_websocket_key": None}, "Sec-WebSocket-Key"),
        ("GET", "1.1", {"sec_websocket_key": b"c2hvcnQ="}, "16 bytes"),
        ("GET", "1.1", {"sec_websocket_key": b"not base64!!"}, "16 bytes"),
    ],
)
def test_bad_requests_are_400_with_a_reason(
    method: str, version: str, changes: dict[str, bytes | None], words: str
) -> None:
    with pytest.raises(HandshakeError) as info:
        validate_request(method, version, request_headers(**changes))
    assert info.value.status == 400
    assert words in info.value.reason


def test_two_hosts_or_two_keys_are_400() -> None:
    with pytest.raises(HandshakeError) as info:
        validate_request("GET", "1.1", [*request_headers(), (b"host", b"other")])
    assert info.value.status == 400
    with pytest.raises(HandshakeError) as info:
        validate_request("GET", "1.1", [*request_headers(), (b"sec-websocket-key", KEY.encode())])
    assert info.value.status == 400


@pytest.mark.parametrize("version", [b"8", b"12", b"13, 8", None])
def test_other_versions_are_426_with_the_supported_version(version: bytes | None) -> None:
    with pytest.raises(HandshakeError) as info:
        validate_request("GET", "1.1", request_headers(sec_websocket_version=version))
    assert info.value.status == 426
    assert info.value.headers == [(b"sec-websocket-version", b"13")]


def test_origin_check() -> None:
    check_origin("https://a.example", [])
    check_origin("https://a.example", ["https://a.example"])
    for origin in ("https://evil.example", None):
        with pytest.raises(HandshakeError) as info:
            check_origin(origin, ["https://a.example"])
        assert info.value.status == 403


def test_accept_headers() -> None:
    headers = accept_headers(KEY, "chat", "permessage-deflate", [(b"x-extra", b"1")])
    assert headers == [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        (b"sec-websocket-protocol", b"chat"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
        (b"x-extra", b"1"),
    ]
    assert accept_headers(KEY) == headers[:3]


def test_generated_keys_are_valid_and_fresh() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        validate_request("GET", "1.1", request_headers(sec_websocket_key=key.encode()))


def test_built_request_is_valid_http_and_accepted_by_our_server() -> None:
    key = generate_key()
    head = build_request(
        "example.com:8000",
        "/chat?room=1",
        key,
        subprotocols=["chat", "v2"],
        extensions_value="permessage-deflate; client_max_window_bits",
        origin="https://example.com",
        extra_headers=[(b"Authorization", b"Bearer t")],
    )
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    request = conn.next_event()
    assert isinstance(request, h11.Request)
    assert request.target == b"/chat?room=1"
    headers = [(k, v) for k, v in request.headers]
    hs = validate_request(request.method.decode(), request.http_version.decode(), headers)
    assert (
        hs.key == key and hs.subprotocols == ["chat", "v2"] and hs.origin == "https://example.com"
    )
    assert (b"authorization", b"Bearer t") in headers
    with pytest.raises(ValueError):
        build_request("h", "/", key, extra_headers=[(b"x", b"a\r\nb: c")])


def good_response(key: str, **extra: bytes) -> RawHeaders:
    return accept_headers(key) + [(k.replace("_", "-").encode(), v) for k, v in extra.items()]


def test_validate_response_accepts_a_good_101() -> None:
    assert validate_response(101, good_response(KEY), KEY) == (None, None)
    assert validate_response(
        101,
        good_response(KEY, sec_websocket_protocol=b"v2"),
        KEY,
        offered_subprotocols=["v1", "v2"],
    ) == ("v2", None)
    _, params = validate_response(
        101,
        good_response(
            KEY, sec_websocket_extensions=b"permessage-deflate; server_max_window_bits=10"
        ),
        KEY,
        deflate_options=DeflateOptions(),
    )
    assert params is not None and params.server_max_window_bits == 10


@pytest.mark.parametrize(
    "status, headers, words",
    [
        (403, [(b"content-type", b"text/plain")], "403"),
        (
            101,
            [(b"connection", b"Upgrade"), (b"sec-websocket-accept", accept_key(KEY).encode())],
            "Upgrade",
        ),
        (
            101,
            [(b"upgrade", b"websocket"), (b"sec-websocket-accept", accept_key(KEY).encode())],
            "Connection",
        ),
        (
            101,
            [
                (b"upgrade", b"websocket"),
                (b"connection", b"upgrade"),
                (b"sec-websocket-accept", b"wrong"),
            ],
            "Accept",
        ),
        (101, good_response(KEY, sec_websocket_protocol=b"other"), "subprotocol"),
        (101, good_response(KEY, sec_websocket_extensions=b"x-unknown"), "extension"),
    ],
)
def test_validate_response_rejections_carry_status_and_headers(
    status: int, headers: RawHeaders, words: str
) -> None:
    with pytest.raises(InvalidResponse) as info:
        validate_response(status, headers, KEY, offered_subprotocols=["chat"])
    assert info.value.status == status and info.value.headers == headers
    assert words in info.value.reason


def test_deflate_answer_we_did_not_ask_for_is_rejected() -> None:
    headers = good_response(
        KEY, sec_websocket_extensions=b"permessage-deflate; client_max_window_bits=20"
    )
    with pytest.raises(InvalidResponse):
        validate_response(101, headers, KEY, deflate_options=DeflateOptions())


def test_wsproto_client_handshake_against_our_server() -> None:
    client = WSConnection(ConnectionType.CLIENT)
    head = client.send(wse.Request(host="example.com", target="/ws", subprotocols=["chat"]))
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    request = conn.next_event()
    assert isinstance(request, h11.Request)
    hs = validate_request("GET", "1.1", list(request.headers))
    assert hs.subprotocols == ["chat"]
    headers = accept_headers(hs.key, "chat")
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
        + b"\r\n"
    )
    client.receive_data(response)
    accepted = list(client.events())
    assert isinstance(accepted[0], wse.AcceptConnection) and accepted[0].subprotocol == "chat"
