"""Types of the optional C head scanner (asgiws/http/_speedups.c)."""

def scan_head(
    buffer: bytes, pos: int, end: int, /
) -> (
    tuple[bytes, bytes, bytes, bytes, list[tuple[bytes, bytes]], int, list[tuple[bytes, bytes]]]
    | None
): ...
def share(names_and_values: tuple[bytes, ...], /) -> None: ...
