"""The supervisor's listeners: bound once, inherited by every worker."""

from __future__ import annotations

import os
import socket
import stat

from asgiws.config import Config
from asgiws.server import remove_stale_socket


def bind_sockets(config: Config) -> tuple[list[socket.socket], tuple[int, int] | None]:
    """The app's listening sockets, as the server itself would bind them, and
    the (device, inode) of the `--uds` file made (None otherwise).

    Raises OSError (the caller names `bind_target(config)`)."""
    if config.fd is not None:
        # The family (TCP or UNIX) and type come from the socket itself.
        return [socket.socket(fileno=config.fd)], None
    if config.uds is not None:
        mode = remove_stale_socket(config.uds)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(config.uds)
            sock.listen(config.backlog)
        except OSError:
            sock.close()
            raise
        # A stale socket keeps its permissions; a new one is 0o666, as uvicorn makes it.
        os.chmod(config.uds, 0o666 if mode is None else stat.S_IMODE(mode))
        made = os.stat(config.uds)
        return [sock], (made.st_dev, made.st_ino)
    return bind_tcp(config.host, config.port, config.backlog), None


def bind_tcp(host: str, port: int, backlog: int) -> list[socket.socket]:
    """One listening socket per address `host` resolves to, as asyncio's
    `create_server(host=..., port=...)` binds them."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
