from typing import Any

COMPRESSED_TAIL: bytes
SCANS_CLOSE_FRAMES: int

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes: ...
def deflate_frame(
    compressor: Any, data: bytes | bytearray | memoryview, flush_mode: int, opcode: int, /
) -> bytes: ...
def scan_frames(
    buffer: bytes | bytearray | memoryview,
    pos: int,
    expect_masked: bool,
    max_size: int,
    compressed: bool = False,
    /,
) -> tuple[list[str | bytes | tuple[bool, bytes]], int, bytes | None]: ...

class PayloadAssembler:
    def __init__(self, size: int, /) -> None: ...
    @property
    def filled(self) -> int: ...
    def add(self, data: bytes | bytearray | memoryview, mask: bytes | None, /) -> None: ...
    def take(self) -> bytes: ...
