from collections.abc import Sequence
from typing import Any

from asgiws.connection.shared_write import SharedWriteTransport

def write_each(
    transports: Sequence[SharedWriteTransport], fds: Sequence[int], data: bytes, /
) -> None: ...

def bind_plain(
    connection_class: type, writer_class: type, engine_class: type, open_state: object, /
) -> None: ...
def write_plain(
    connections: list[Any], data: bytes, max_queued: int | None, /
) -> tuple[int, list[Any]]: ...
