"""The header toolkit: one lookup type and one list parser for every layer.

- `Headers`: the case-insensitive, multi-valued view of raw `(name, value)`
  byte pairs (public as `asgiws.Headers`, what websockets users index with
  `request_headers["Origin"]`); the handshake, the client and the
  connection object all read headers through it.
- `split_list`: RFC 9110 section 5.6.1 list syntax, for the HTTP parser
  (Connection, Transfer-Encoding, Upgrade), the response framing, the
  handshake (Upgrade, Connection, Sec-WebSocket-Protocol) and the client.
- `parse_extension_list`: the Sec-WebSocket-Extensions grammar of RFC 6455
  section 9.1, whose parameters may carry quoted strings:

    extension-list = 1#extension
    extension = extension-token *( ";" extension-param )
    extension-param = token [ "=" (token | quoted-string) ]

It lives in the sans-I/O engine (stdlib only) so that the handshake can use
it; the layers above import it from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

ExtensionParams = list[tuple[str, str | None]]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS = re.compile(r"[ \t]*")
_UNESCAPE = re.compile(r"\\(.)")


def split_list(value: str) -> list[str]:
    """The elements of one comma-separated header value, case kept.

    RFC 9110 5.6.1: "a recipient MUST parse and ignore a reasonable number
    of empty list elements", and optional whitespace (OWS: SP, HTAB) around
    each element is not part of it.  For lists of tokens; elements with
    quoted commas (Sec-WebSocket-Extensions) have their own parser below.
    """
    # Runs on every request's Connection header: a plain loop, and most
    # values hold a single element.
    if "," not in value:
        value = value.strip(" \t")
        return [value] if value else []
    items = []
    for part in value.split(","):
        part = part.strip(" \t")
        if part:
            items.append(part)
    return items


class Headers(Mapping[str, str]):
    """Read-only headers over ASGI-style `(name, value)` byte pairs.

    `headers["x"]` and `get("x")` give the first value (names are
    case-insensitive); `get_all("x")` gives every value; `get_list("x")` the
    comma-separated elements of every value; `raw` the pairs as they came.
    Decoding is latin-1, as HTTP/1.1 header bytes are.
    """

    __slots__ = ("_index", "raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.raw: list[tuple[bytes, bytes]] = list(raw)
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def over(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """Headers over `raw` itself, not a copy: the server's connections
        share the ASGI scope's list (an idle connection keeps one list, not two)."""
        headers = cls.__new__(cls)
        headers.raw = raw
        headers._index = None
        return headers

    def _build(self) -> dict[str, list[str]]:
        # One pass over the pairs, on the first lookup only: most
        # connections never read their headers, and every lookup after it
        # is a dict hit.
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
        return list(self._build().get(name.lower(), ()))

    def by_name(self) -> Mapping[str, list[str]]:
        """The index itself, lower-case name -> every value in order: for code
        that reads many headers in a row (the opening handshake runs on every
        connection), one dict lookup per header instead of a method call."""
        return self._build()

    def get_list(self, name: str) -> list[str]:
        """Elements of every `name` header as one list (`split_list`)."""
        return [item for value in self._build().get(name.lower(), ()) for item in split_list(value)]

    def raw_items(self) -> list[tuple[str, str]]:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw]

    def __repr__(self) -> str:
        return f"Headers({self.raw_items()!r})"


def is_token(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None


def parse_extension_list(values: Iterable[str]) -> list[tuple[str, ExtensionParams]]:
    """Parse Sec-WebSocket-Extensions values into (name, [(param, value)]).

    Quoted parameter values are unquoted; RFC 6455 section 9.1: "When using
    the quoted-string syntax variant, the value after quoted-string unescaping
    MUST conform to the 'token' ABNF."  Raises ValueError on bad syntax.
    """
    result: list[tuple[str, ExtensionParams]] = []
    for value in values:
        pos = 0
        end = len(value)
        while pos < end:
            pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
            if pos < end and value[pos] == ",":
                pos += 1
                continue
            if pos >= end:
                break
            m = _TOKEN.match(value, pos)
            if m is None:
                raise ValueError(f"expected an extension name at {value[pos:]!r}")
            name = m.group().lower()
            pos = _OWS.match(value, m.end()).end()  # type: ignore[union-attr]
            params: ExtensionParams = []
            while pos < end and value[pos] == ";":
                pos = _OWS.match(value, pos + 1).end()  # type: ignore[union-attr]
                m = _TOKEN.match(value, pos)
                if m is None:
                    raise ValueError(f"expected a parameter name at {value[pos:]!r}")
                param = m.group().lower()
                pos = _OWS.match(value, m.end()).end()  # type: ignore[union-attr]
                param_value: str | None = None
                if pos < end and value[pos] == "=":
                    pos = _OWS.match(value, pos + 1).end()  # type: ignore[union-attr]
                    m = _TOKEN.match(value, pos)
                    if m is not None:
                        param_value = m.group()
                    else:
                        q = _QUOTED.match(value, pos)
                        if q is None:
                            raise ValueError(f"bad value for {param!r} in {value!r}")
                        param_value = _UNESCAPE.sub(r"\1", q.group(1))
                        if not is_token(param_value):
                            raise ValueError(f"quoted value of {param!r} is not a token")
                        m = q
                    pos = _OWS.match(value, m.end()).end()  # type: ignore[union-attr]
                params.append((param, param_value))
            if pos < end and value[pos] != ",":
                raise ValueError(f"unexpected {value[pos:]!r} in {value!r}")
            result.append((name, params))
    return result


def format_extension(name: str, params: ExtensionParams) -> str:
    return "; ".join([name] + [p if v is None else f"{p}={v}" for p, v in params])
