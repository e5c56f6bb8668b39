"""Parsing of the comma-separated header lists the handshake reads.

The one place that knows RFC 7230 list syntax (section 7: empty elements are
skipped) and the Sec-WebSocket-Extensions grammar of RFC 6455 section 9.1:

    extension-list = 1#extension
    extension = extension-token *( ";" extension-param )
    extension-param = token [ "=" (token | quoted-string) ]
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ExtensionParams = list[tuple[str, str | None]]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS = re.compile(r"[ \t]*")
_UNESCAPE = re.compile(r"\\(.)")


HeaderIndex = dict[bytes, list[str]]
"""Header values by lower-case name, decoded as latin-1."""


def index_headers(headers: Iterable[tuple[bytes, bytes]]) -> HeaderIndex:
    """One pass over the headers, so that each lookup after it is a dict hit."""
    index: HeaderIndex = {}
    for key, value in headers:
        index.setdefault(key.lower(), []).append(value.decode("latin-1"))
    return index


def header_values(index: HeaderIndex, name: bytes) -> list[str]:
    """Every value of header `name` (lower-case)."""
    return index.get(name, [])


def parse_token_list(values: Iterable[str]) -> list[str]:
    """Split comma-separated tokens over all `values`, dropping empty elements."""
    tokens: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if item:
                tokens.append(item)
    return tokens


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
