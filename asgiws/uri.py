"""WebSocket URIs (RFC 6455 section 3): `ws://host:port/path?query`.

`parse_uri` turns what a user passes to `connect()` into the pieces the
opening handshake needs, and refuses anything a WebSocket URI cannot be with
`InvalidURI`, a `ValueError` that names the problem.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from asgiws.exceptions import InvalidURI

__all__ = ["InvalidURI", "WebSocketURI", "parse_uri"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}

# Characters left as they are when percent-encoding the path and query:
# RFC 3986 reserved and unreserved characters, and '%' so that an already
# encoded URI is not encoded twice.
_SAFE = "!#$%&'()*+,/:;=?@[]~"


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    """The parts of a WebSocket URI that the client uses."""

    secure: bool  # wss://
    host: str  # without IPv6 brackets: what the socket connects to
    port: int
    resource_name: str  # path and query, what the request line carries
    user_info: tuple[str, str] | None = None  # ws://user:pass@host -> Basic auth

    @property
    def host_header(self) -> str:
        """The Host header value (RFC 7230 5.4): the port only when not the default."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        elif not host.isascii():
            # An internationalized name goes on the wire in its IDNA (punycode) form.
            host = host.encode("idna").decode("ascii")
        if self.port == (443 if self.secure else 80):
            return host
        return f"{host}:{self.port}"


# RFC 3986 3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ).
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")
_ZONE_ID = re.compile(r"[A-Za-z0-9\-._~]+")


def _check_host(uri: str, host: str) -> None:
    """The host goes into the Host header and to the resolver as it is:
    an IPv6 literal, or a name that is (or IDNA-encodes to) RFC 3986
    reg-name characters -- no space, no control character."""
    if ":" in host:
        # RFC 6874: a zone identifier is unreserved characters only (the
        # address parser takes any character there, control ones included).
        _address, percent, zone = host.partition("%")
        if percent and not _ZONE_ID.fullmatch(zone):
            raise InvalidURI(uri, f"bad IPv6 zone identifier in {host!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidURI(uri, f"{host!r} is not an IPv6 address") from None
        return
    try:
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidURI(uri, f"host {host!r} is not a valid internationalized name") from None
    if not _REG_NAME.fullmatch(ascii_host):
        raise InvalidURI(uri, f"host {host!r} has characters a host name cannot have")


def parse_uri(uri: str) -> WebSocketURI:
    """Parse `uri`, or raise InvalidURI saying what is wrong with it."""
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise InvalidURI(uri, str(exc)) from None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        got = f"{parsed.scheme}://" if parsed.scheme else "no scheme"
        raise InvalidURI(uri, f"the scheme must be ws:// or wss://, not {got}")
    # RFC 6455 3: "The <host> component is required."
    host = parsed.hostname
    if not host:
        raise InvalidURI(uri, "no host")
    _check_host(uri, host)
    # RFC 6455 3: "Fragment identifiers are meaningless in the context of
    # WebSocket URIs and MUST NOT be used on these URIs."
    if parsed.fragment or uri.endswith("#"):
        raise InvalidURI(uri, "a WebSocket URI cannot have a #fragment")
    try:
        port = parsed.port
    except ValueError:
        raise InvalidURI(uri, f"bad port in {parsed.netloc!r}") from None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif port == 0:
        raise InvalidURI(uri, "port 0 cannot be connected to")
    # RFC 6455 3: the resource name is "/" if the path is empty, then the
    # query with its "?".
    resource_name = parsed.path or "/"
    if parsed.query:
        resource_name += "?" + parsed.query
    # Non-ASCII characters and spaces cannot go on the request line as they
    # are: percent-encode them (existing %XX escapes are kept).
    resource_name = urllib.parse.quote(resource_name, safe=_SAFE)
    user_info = None
    if parsed.username is not None or parsed.password is not None:
        user_info = (
            urllib.parse.unquote(parsed.username or ""),
            urllib.parse.unquote(parsed.password or ""),
        )
    return WebSocketURI(
        secure=scheme == "wss",
        host=host,
        port=port,
        resource_name=resource_name,
        user_info=user_info,
    )
