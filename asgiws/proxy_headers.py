"""Proxy headers: who the client is and which scheme it used, as a trusted
proxy in front of the server says.

Behind nginx, HAProxy or a cloud load balancer every connection comes from
the proxy; the proxy names the real client in `X-Forwarded-For` (or RFC 7239
`Forwarded: for=`) and the scheme it was reached by in `X-Forwarded-Proto`
(or `Forwarded: proto=`).  Anybody can send those headers, so they only
count when the connection's peer is trusted (`--forwarded-allow-ips`), with
uvicorn's rules, names and defaults:

- the trusted set holds IP addresses, networks (CIDR) and literals; `*`
  trusts every peer.  A UNIX-socket peer has no address: it is trusted by
  `*`, by the literal `unix:`, or by the listening socket's path;
- the client is the right-most address of the chain that is not trusted
  (each proxy appends the peer it got the request from, so everything right
  of that address was added by proxies we trust, and everything left of it
  may be forged); when every hop is trusted, the left-most one;
  the port is unknown behind a proxy and reported as 0 (uvicorn does too);
- `https`/`wss` make the connection secure, `http`/`ws` plain; any other
  value is ignored.

`X-Forwarded-For`/`X-Forwarded-Proto` come first, as in uvicorn; `Forwarded`
is read for what they do not say.  A proxy should set or strip both kinds,
or a client may supply the kind it leaves alone.

Trust is decided once per connection (`TrustedProxies.trusts_peer`); a
request from a trusted peer then costs one pass over its headers
(`forwarded_client`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from asgiws.types import Headers

__all__ = [
    "DEFAULT_FORWARDED_ALLOW_IPS",
    "UNIX_PEER",
    "Forwarded",
    "TrustedProxies",
    "forwarded_allow_ips",
    "forwarded_client",
    "parse_forwarded",
]

DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1"
UNIX_PEER = "unix:"
"""The literal that trusts every peer of a UNIX-socket listener."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SECURE = {"https": True, "wss": True, "http": False, "ws": False}


def forwarded_allow_ips(configured: str | None) -> str:
    """The option's value, else $FORWARDED_ALLOW_IPS, else 127.0.0.1 (uvicorn's order)."""
    if configured is not None:
        return configured
    return os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS)


def _split_hosts(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class TrustedProxies:
    """The peers whose proxy headers count: addresses, networks, literals, or `*`."""

    __slots__ = ("always", "cache", "hosts", "literals", "networks")

    def __init__(self, trusted: str | Iterable[str]) -> None:
        items = _split_hosts(trusted) if isinstance(trusted, str) else [t.strip() for t in trusted]
        self.always = "*" in items
        self.hosts: set[IPAddress] = set()
        self.networks: list[IPNetwork] = []
        self.literals: set[str] = set()
        for item in items:
            # As uvicorn: what does not parse as an address or a network is a
            # literal (a UNIX socket path, `unix:`), compared as text.
            try:
                if "/" in item and not item.startswith("/"):
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                else:
                    self.hosts.add(ipaddress.ip_address(item))
            except ValueError:
                self.literals.add(item)
        # Answers per host text: a chain walk asks about the same few proxies.
        self.cache = functools.lru_cache(maxsize=1024)(self._trusts_host)

    def __repr__(self) -> str:
        if self.always:
            return "TrustedProxies('*')"
        items = [*map(str, self.hosts), *map(str, self.networks), *sorted(self.literals)]
        return f"TrustedProxies({','.join(items)!r})"

    def _trusts_host(self, host: str) -> bool:
        if self.always:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return host in self.literals
        if address in self.hosts:
            return True
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None and mapped in self.hosts:
            return True  # ::ffff:127.0.0.1 on a dual-stack socket
        return any(address in network for network in self.networks)

    def trusts_host(self, host: str) -> bool:
        """Whether an address (or literal) named in a header or as a peer is trusted."""
        return bool(host) and self.cache(host)

    def trusts_peer(self, peer: tuple[str, int] | None, unix_path: str | None) -> bool:
        """Whether the connection's peer is trusted: a TCP peer by its address,
        a UNIX-socket peer (`peer` None, `unix_path` the listening socket's
        path, "" if unknown) by `*`, `unix:` or that path."""
        if self.always:
            return True
        if peer is not None:
            host = peer[0]  # (trusts_host, written out: once per connection)
            return bool(host) and self.cache(host)
        if unix_path is None:
            return False
        return UNIX_PEER in self.literals or (bool(unix_path) and unix_path in self.literals)

    def client_from_chain(self, chain: Sequence[str]) -> str | None:
        """The client in a forwarding chain (left-most = farthest from us):
        the right-most untrusted hop, else the left-most; None for no chain."""
        if not chain:
            return None
        if self.always:
            return chain[0]
        for host in reversed(chain):
            if not self.trusts_host(host):
                return host
        return chain[0]


# --- RFC 7239 Forwarded ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Forwarded:
    """One `Forwarded` element: what one proxy saw (lower-cased parameter names)."""

    for_: str | None = None
    proto: str | None = None


_PAIR = re.compile(
    r"""[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*"""
    r"""(?:([!#$%&'*+\-.^_`|~0-9A-Za-z:\[\]]+)|"((?:[^"\\]|\\.)*)")[ \t]*"""
)
_UNESCAPE = re.compile(r"\\(.)")
_PORT = re.compile(r":[0-9]+|:_[0-9A-Za-z._-]+")


def node_host(node: str) -> str:
    """The host of an RFC 7239 node: `[2001:db8::1]:4711` -> `2001:db8::1`,
    `192.0.2.43:80` -> `192.0.2.43`; `unknown` and `_obfuscated` stay as
    they are (never trusted, never an address)."""
    if node.startswith("["):
        end = node.find("]")
        return node[1:end] if end > 0 else node
    if node.count(":") == 1:
        host, _, _port = node.partition(":")
        return host
    return node


def parse_forwarded(values: Iterable[str]) -> list[Forwarded] | None:
    """The elements of every `Forwarded` header value, in order (left-most
    first); None when a value does not follow RFC 7239's grammar, so a
    malformed header is ignored as a whole rather than half-read."""
    elements: list[Forwarded] = []
    for value in values:
        pos, end = 0, len(value)
        while pos <= end:
            for_: str | None = None
            proto: str | None = None
            while True:
                match = _PAIR.match(value, pos)
                if match is None:
                    # An empty element or pair: "a=b;" and ", ," are allowed.
                    rest = value[pos:].lstrip(" \t")
                    pos = end - len(rest)
                    break
                name, token, quoted = match.groups()
                text = token if token is not None else _UNESCAPE.sub(r"\1", quoted)
                name = name.lower()
                if name == "for":
                    for_ = node_host(text)
                elif name == "proto":
                    proto = text.lower()
                pos = match.end()
                if pos < end and value[pos] == ";":
                    pos += 1
                    continue
                break
            if for_ is not None or proto is not None:
                elements.append(Forwarded(for_, proto))
            if pos >= end:
                break
            if value[pos] != ",":
                return None
            pos += 1
    return elements


# --- one request ------------------------------------------------------------------
def forwarded_client(
    headers: Headers,
    trusted: TrustedProxies,
    client: tuple[str, int] | None,
    secure: bool,
) -> tuple[tuple[str, int] | None, bool]:
    """(client, secure) of a request that came through a trusted peer: the
    headers' answer where they give one, else the transport's."""
    x_for: list[str] = []
    x_proto: str | None = None
    forwarded: list[str] = []
    for name, value in headers:
        # Names are lower-cased by the parser; three comparisons per header.
        if name == b"x-forwarded-for":
            x_for.extend(_split_hosts(value.decode("latin-1")))
        elif name == b"x-forwarded-proto":
            x_proto = value.decode("latin-1")
        elif name == b"forwarded":
            forwarded.append(value.decode("latin-1"))
    if not x_for and x_proto is None and not forwarded:
        return client, secure

    host: str | None = trusted.client_from_chain(x_for)
    proto: str | None = None
    if x_proto is not None:
        # A comma list (a chain of proxies that append): the right-most
        # entry is the one the trusted peer vouches for.
        entries = _split_hosts(x_proto)
        proto = entries[-1].lower() if entries else None
    if forwarded and (host is None or proto is None):
        elements = parse_forwarded(forwarded)
        if elements:
            chosen = _chosen_element(elements, trusted)
            if host is None and chosen.for_ is not None:
                host = chosen.for_
            if proto is None:
                proto = chosen.proto
    if host is not None:
        client = (host, 0)
    if proto is not None:
        secure = _SECURE.get(proto, secure)
    return client, secure


def _chosen_element(elements: list[Forwarded], trusted: TrustedProxies) -> Forwarded:
    """The element of the hop that names the client: its `for=` is the
    client, its `proto=` what the client used.  Elements without `for=`
    (a proxy that only says proto=) take part by position, not by address."""
    with_for = [e for e in elements if e.for_ is not None]
    if not with_for:
        return elements[-1]
    host = trusted.client_from_chain([e.for_ for e in with_for if e.for_ is not None])
    for element in reversed(with_for):
        if element.for_ == host:
            return element
    return with_for[0]  # pragma: no cover - client_from_chain returns a member
