"""The supervisor's listeners: bound once, inherited by every worker."""

from __future__ import annotations

import os
import socket
import stat

from asgiws.config import Config
from asgiws.listeners import bind_tcp, listen_sockets
from asgiws.server import loop_factory, remove_stale_socket


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
    # The workers run the loop `loop_factory` picks: uvloop takes a group.
    per_address = listen_sockets(config.listen_sockets, loop_factory(config.loop) is not None)
    return bind_tcp(config.host, config.port, config.backlog, per_address), None
