"""What users hand us as headers, and the `Headers` they get back.

`Headers` (the case-insensitive, multi-valued view that websockets users
index with `request_headers["Origin"]`) is defined in the sans-I/O engine,
which reads headers through it too; it is public as `asgiws.Headers` and
importable from here as before."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from asgiws.websocket.headers import Headers

__all__ = ["Headers", "HeadersLike", "encode_headers"]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
"""What users pass as headers: a mapping, pairs of str, or a `Headers`."""


def encode_headers(
    headers: HeadersLike | None, *, lowercase: bool = False
) -> list[tuple[bytes, bytes]]:
    """User-supplied headers as raw byte pairs (latin-1, as HTTP/1.1 header bytes are)."""
    if headers is None:
        return []
    if isinstance(headers, Headers):
        raw = list(headers.raw)
        return [(n.lower(), v) for n, v in raw] if lowercase else raw
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [
        ((name.lower() if lowercase else name).encode("latin-1"), value.encode("latin-1"))
        for name, value in pairs
    ]
