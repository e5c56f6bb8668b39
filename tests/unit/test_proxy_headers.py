"""The proxy-header rules alone: trust sets, chains, RFC 7239 parsing."""

from __future__ import annotations

import pytest

from asgiws.proxy_headers import (
    Forwarded,
    TrustedProxies,
    forwarded_allow_ips,
    forwarded_client,
    parse_forwarded,
)


def test_trusted_addresses_networks_literals_and_star() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8 ,::1,/run/app.sock,unix:")
    assert trusted.trusts_host("127.0.0.1") and trusted.trusts_host("10.200.0.1")
    assert trusted.trusts_host("0:0:0:0:0:0:0:1")  # another spelling of ::1
    assert trusted.trusts_host("::ffff:127.0.0.1")  # IPv4-mapped, dual-stack sockets
    assert not trusted.trusts_host("11.0.0.1") and not trusted.trusts_host("")
    assert trusted.trusts_peer(None, "/run/app.sock") and trusted.trusts_peer(None, "/other")
    assert not TrustedProxies("127.0.0.1,/run/app.sock").trusts_peer(None, "/other")
    assert TrustedProxies("*").trusts_peer(None, "") and TrustedProxies("*").trusts_host("x")
    assert not TrustedProxies("127.0.0.1").trusts_peer(None, None)


def test_client_is_the_right_most_untrusted_hop() -> None:
    trusted = TrustedProxies("127.0.0.1,10.0.0.0/8")
    assert trusted.client_from_chain(["1.1.1.1", "2.2.2.2", "10.0.0.5"]) == "2.2.2.2"
    assert trusted.client_from_chain(["10.0.0.1", "10.0.0.2"]) == "10.0.0.1"
    assert TrustedProxies("*").client_from_chain(["1.1.1.1", "2.2.2.2"]) == "1.1.1.1"
    assert trusted.client_from_chain([]) is None


def test_forwarded_allow_ips_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert forwarded_allow_ips(None) == "127.0.0.1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    assert forwarded_allow_ips(None) == "10.0.0.1"
    assert forwarded_allow_ips("*") == "*"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43",
         [Forwarded("192.0.2.60", "http")]),
        ('for="[2001:db8:cafe::17]:4711"', [Forwarded("2001:db8:cafe::17", None)]),
        ('For="192.0.2.43:47011", for=unknown;PROTO=HTTPS',
         [Forwarded("192.0.2.43", None), Forwarded("unknown", "https")]),
        ('for=_hidden, for="\\"quoted\\""', [Forwarded("_hidden", None), Forwarded('"quoted"')]),
        ("for=1.2.3.4;, ,proto=wss", [Forwarded("1.2.3.4", None), Forwarded(None, "wss")]),
        ("", []),
        ("for=1.2.3.4 junk", None),
        ('for="unterminated', None),
        ("=x", None),
    ],
)
def test_parse_forwarded(value: str, expected: list[Forwarded] | None) -> None:
    assert parse_forwarded([value]) == expected


def test_forwarded_client_from_headers() -> None:
    trusted = TrustedProxies("127.0.0.1")
    peer = ("127.0.0.1", 5000)
    assert forwarded_client([], trusted, peer, False) == (peer, False)
    headers = [(b"x-forwarded-for", b"9.9.9.9"), (b"x-forwarded-for", b"8.8.8.8, 127.0.0.1"),
               (b"x-forwarded-proto", b"http, https")]
    # Repeated headers are one list; the right-most proto is the trusted peer's.
    assert forwarded_client(headers, trusted, peer, False) == (("8.8.8.8", 0), True)
    assert forwarded_client([(b"x-forwarded-proto", b"gopher")], trusted, peer, True) == (
        peer, True)
    chain = [(b"forwarded", b"for=7.7.7.7;proto=https, for=127.0.0.1;proto=http")]
    assert forwarded_client(chain, trusted, peer, False) == (("7.7.7.7", 0), True)
