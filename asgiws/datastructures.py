"""`Headers`: the case-insensitive, multi-valued view of raw header pairs that
websockets users index with `request_headers["Origin"]`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

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


class Headers(Mapping[str, str]):
    """Read-only headers over ASGI-style `(name, value)` byte pairs.

    `headers["x"]` and `get("x")` give the first value (names are
    case-insensitive); `get_all("x")` gives every value; `raw` the pairs as
    they came.  Decoding is latin-1, as HTTP/1.1 header bytes are.
    """

    __slots__ = ("_index", "raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.raw: list[tuple[bytes, bytes]] = list(raw)
        self._index: dict[str, list[str]] | None = None

    def _build(self) -> dict[str, list[str]]:
        # Built on first lookup only: most connections never read their headers.
        if self._index is None:
            index: dict[str, list[str]] = {}
            for name, value in self.raw:
                index.setdefault(name.decode("latin-1").lower(), []).append(
                    value.decode("latin-1")
                )
            self._index = index
        return self._index

    def __getitem__(self, name: str) -> str:
        return self._build()[name.lower()][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._build()

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def get_all(self, name: str) -> list[str]:
        return list(self._build().get(name.lower(), []))

    def raw_items(self) -> list[tuple[str, str]]:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw]

    def __repr__(self) -> str:
        return f"Headers({self.raw_items()!r})"
