from collections.abc import Sequence

from asgiws.connection.shared_write import SharedWriteTransport

def write_each(
    transports: Sequence[SharedWriteTransport], fds: Sequence[int], data: bytes, /
) -> None: ...
