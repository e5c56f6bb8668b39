"""TCP listening sockets: one per address the host resolves to, or a group
of several per address sharing the port.

Why a group: libuv (uvloop's engine) accepts one connection per listening
socket per event-loop turn, so a burst of new connections costs one loop
turn each: an epoll wait, the callbacks of that turn, and an answer written
while the client, woken once per answer, has gone back to sleep.  asyncio's
own loop accepts up to `backlog` connections per turn from one socket.  With
N sockets in one SO_REUSEPORT group (Linux spreads incoming connections over
them by a hash of the addresses), uvloop accepts up to N per turn: on the
`ws_handshake` benchmark, the group takes asgiws from ~6,300 to ~8,800
handshakes/s on one core (docs/PERFORMANCE.md, "Ninth pass").

SO_REUSEPORT lets any socket of the same user join a group, so binding a
group first checks that the port is free with a plain socket: a second
server started on a port in use fails with "address already in use", as it
would with one socket, instead of silently sharing the first one's
connections.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "UVLOOP_LISTEN_SOCKETS",
    "bind_addresses",
    "bind_tcp",
    "can_share_port",
    "fixed_local_address",
    "listen_sockets",
    "running_uvloop",
]

Address = tuple[Any, ...]
"""A socket address as getaddrinfo gives it: (host, port) or IPv6's four."""

AddressInfo = tuple[Any, Any, int, str, Address]
"""One answer of getaddrinfo: (family, type, proto, canonname, address)."""

UVLOOP_LISTEN_SOCKETS = 32
"""Sockets per address when the loop is uvloop and `--listen-sockets` is
not given.  On the handshake benchmark (16 handshakes in flight), 8 sockets
took asgiws from ~6,300 to ~8,800 handshakes/s and 32 another ~4 % past 16
(fewer connections hash to a socket already holding one); 64 gave no more."""


def can_share_port() -> bool:
    """Whether a group of sockets shares a port's connections here: Linux's
    SO_REUSEPORT balances them (elsewhere the option exists with other
    semantics, or not at all)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listen_sockets(configured: int | None, uvloop: bool) -> int:
    """Sockets per address: `--listen-sockets`, else 32 on uvloop where the
    port can be shared, else 1."""
    if configured is not None:
        return configured
    return UVLOOP_LISTEN_SOCKETS if uvloop and can_share_port() else 1


def running_uvloop(loop: object) -> bool:
    """Whether `loop` (the running one) is uvloop's."""
    return type(loop).__module__.partition(".")[0] == "uvloop"


def fixed_local_address(sock: socket.socket) -> tuple[str, int] | None:
    """The local (host, port) of every connection `sock` accepts: its own,
    when it listens on one IP address.  None when each connection's depends
    on the interface it came in on (0.0.0.0, ::) or for a UNIX socket: the
    server then asks each connection's transport."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    name = sock.getsockname()
    host, port = str(name[0]), int(name[1])
    if ipaddress.ip_address(host).is_unspecified:
        return None
    return host, port


def bind_tcp(host: str, port: int, backlog: int, per_address: int = 1) -> list[socket.socket]:
    """Listening sockets for every address `host` resolves to, as asyncio's
    `create_server(host=..., port=...)` binds them (SO_REUSEADDR, IPv6 sockets
    IPv6-only), `per_address` of them per address in one SO_REUSEPORT group.

    Raises OSError (the caller names the address).  A group needs
    `can_share_port()` (`Config` refuses `--listen-sockets` above 1 elsewhere)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return bind_addresses(infos, per_address, backlog=backlog)


def bind_addresses(
    infos: Iterable[AddressInfo],
    per_address: int,
    *,
    backlog: int | None = None,
    reuse_address: bool = True,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Sockets bound to each distinct address of `infos` (getaddrinfo's
    answers), `per_address` of them per address, listening when `backlog`
    is given.  `reuse_port`: the caller shares the port with sockets of its
    own on purpose (`serve(reuse_port=True)`), so a port in use is no error.

    Raises OSError, after closing what it bound."""
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    shared = reuse_port or per_address > 1
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            if per_address > 1 and not reuse_port and address[1] != 0:
                _check_free(family, kind, proto, address, reuse_address)
            for _ in range(per_address):
                sock = _new_socket(family, kind, proto, reuse_address, shared)
                sockets.append(sock)
                sock.bind(address)
                if backlog is not None:
                    sock.listen(backlog)
                # Port 0: the others join the port the kernel gave the first.
                address = sock.getsockname()
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _new_socket(
    family: int, kind: int, proto: int, reuse_address: bool, shared: bool
) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    except OSError:
        sock.close()
        raise
    return sock


def _check_free(
    family: int, kind: int, proto: int, address: Address, reuse_address: bool
) -> None:
    """Raise EADDRINUSE when `address` is taken, by anyone: a plain socket
    cannot bind over a listener, SO_REUSEPORT group or not."""
    probe = _new_socket(family, kind, proto, reuse_address, shared=False)
    try:
        probe.bind(address)
    finally:
        probe.close()
