"""One shared frame to many connections' sockets: what a broadcast's or the
hub's fan-out writes once it has checked each member.

`write_each(transports, fds, data)` (C, `_speedups.c`) writes `data` to each
transport: straight to its socket `fds[i]` when the transport holds nothing
and is not closing -- what the transport's own `write()` does first,
without the Python call and the buffer bookkeeping around it, which at
thousands of members were a tenth of the server's CPU per delivery -- and
through the transport otherwise, which also gets whatever the kernel did
not take.  Without the extension, or with `ASGIWS_NO_EXTENSIONS=1`,
`write_each` is None and the fan-out calls each transport's `write()`
itself, in its loop: the same bytes on the wire.

`write_plain(connections, data, max_queued)` (C too) runs the fan-out's
member loop for its common case (`asgiws.connection.write_prepared_to_each`
says which) and writes those members as `write_each` would; the others come
back for the Python loop.  `bind_plain` names the classes whose slots it
reads, once, when `asgiws.connection.core` is imported.

`stream_fd(transport)` is the descriptor a transport may be written around:
its own stream socket, not under TLS; -1 otherwise.  A
connection's `Writer` looks it up once (`Writer.fd`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from asgiws.websocket.mask import extensions_enabled

__all__ = [
    "SharedWriteTransport",
    "WriteEach",
    "WritePlain",
    "bind_plain",
    "stream_fd",
    "write_each",
    "write_plain",
]


class SharedWriteTransport(Protocol):
    """What `write_each` calls on a transport (asyncio's and uvloop's have it)."""

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def write(self, data: bytes) -> None: ...


WriteEach = Callable[[Sequence[SharedWriteTransport], Sequence[int], bytes], None]
"""write_each(transports, fds, data); the C version takes lists only."""

WritePlain = Callable[[list[Any], bytes, "int | None"], tuple[int, list[Any]]]
"""write_plain(connections, data, max_queued) -> (written, the others)."""


def stream_fd(transport: asyncio.BaseTransport) -> int:
    """The transport's socket descriptor, when bytes may be written to it
    directly: a stream socket the transport reads and writes itself.  -1
    under TLS (the socket carries records, not our bytes), for a transport
    without a socket, or for anything else."""
    if transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        fd = sock.fileno()
        if fd < 0 or sock.type != socket.SOCK_STREAM:
            return -1
    except (OSError, AttributeError):
        return -1
    return int(fd)


def _c_write_each() -> WriteEach | None:
    if not extensions_enabled():
        return None
    try:
        from asgiws.connection import _speedups
    except ImportError:  # not built: the fan-out writes through each transport
        return None
    return _speedups.write_each


write_each = _c_write_each()
"""The C `write_each`; None without the extension or with ASGIWS_NO_EXTENSIONS=1
(read at each fan-out, so tests can swap it)."""

write_plain: WritePlain | None = None
"""The C `write_plain` once `bind_plain` has named its classes; None without
the extension (read at each fan-out, so tests can swap it)."""


def bind_plain(
    connection_class: type, writer_class: type, engine_class: type, open_state: object
) -> None:
    """Tell the C `write_plain` which classes' slots it reads, and make it
    `write_plain`; nothing without the extension."""
    global write_plain
    if write_each is None:  # (the same module, and the same switch)
        return
    from asgiws.connection import _speedups

    if not hasattr(_speedups, "bind_plain"):
        return  # an older build (not rebuilt since): the Python loop does it all
    _speedups.bind_plain(connection_class, writer_class, engine_class, open_state)
    write_plain = _speedups.write_plain
