"""The one builder of ASGI connection scopes, `http` and `websocket` alike.

Both kinds come from the same `RequestHead` and `ConnectionContext`, so
every key they share is computed here once and cannot drift apart:

- `asgi.spec_version` "2.5" for both: the HTTP and WebSocket message
  formats are one ASGI document with one version, and asgiws implements all
  of it (2.4: `send()` after a disconnect raises an `OSError` subclass,
  `ClientDisconnected`; 2.5: `reason` in `websocket.disconnect`).
- `path` and `raw_path` include `root_path`, as uvicorn >= 0.26 does and as
  Starlette's routing expects; `raw_path` gets the root path percent-encoded,
  so that it stays the bytes a client would have sent.
- `state` is a shallow copy of the lifespan state: an app may add keys per
  request without touching the server's namespace, and shares its objects
  (a connection pool) as the lifespan spec intends.
- `client` and `scheme` come from `client_and_secure()`: the one place
  proxy headers (X-Forwarded-For / X-Forwarded-Proto / Forwarded, from a
  trusted peer) change them, for both kinds of scope and for what the
  observer reports (so the access log and metrics see the same client).
- `server` is the listening (host, port), None on a UNIX socket.

It runs once per request and once per handshake: plain dict literals, no
per-call copies beyond the ones the spec asks for.  The HTTP request cycle
and the WebSocket adapter both import it; it imports nothing but types and
the proxy-header rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from asgiws.proxy_headers import forwarded_client

if TYPE_CHECKING:
    from asgiws.types import ConnectionContext, RequestHead, Scope

__all__ = [
    "ASGI_VERSIONS",
    "NO_OPTIONS",
    "SPEC_VERSION",
    "SharedDict",
    "build_scope",
    "client_and_secure",
    "http_scope",
    "request_path",
    "websocket_scope",
]

SPEC_VERSION = "2.5"


class SharedDict(dict[str, Any]):
    """A dict every scope shares (one per server, not one per connection:
    an idle WebSocket keeps its scope), so changing it is refused rather
    than seen by every other connection."""

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("this scope dict is shared by every connection: copy it to change it")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    # A copy (copy, deepcopy, pickle) is a plain dict the copier may change.
    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self),)


ASGI_VERSIONS = SharedDict(version="3.0", spec_version=SPEC_VERSION)
"""scope["asgi"]."""
NO_OPTIONS = SharedDict()
"""An empty options dict of a scope extension (e.g. "websocket.http.response")."""


def client_and_secure(
    head: RequestHead, ctx: ConnectionContext
) -> tuple[tuple[str, int] | None, bool]:
    """The client address and whether the connection is secure, as the app
    should see them: the transport's own, or what the proxy headers in
    `head` say when the connection's peer is a trusted proxy (decided once
    per connection, `ConnectionInfo.trusted_proxy`; see
    `asgiws.proxy_headers`)."""
    info = ctx.info
    if info.trusted_proxy:
        trusted = ctx.server_state.trusted_proxies
        if trusted is not None:
            return forwarded_client(head.headers, trusted, info.client, info.is_tls)
    return info.client, info.is_tls


def request_path(head: RequestHead, ctx: ConnectionContext) -> str:
    """The scope's `path`: the request's, under `root_path`."""
    root_path = ctx.config.root_path
    return root_path + head.path if root_path else head.path


@lru_cache(maxsize=16)
def _raw_root_path(root_path: str) -> bytes:
    return quote(root_path, safe="/!$&'()*+,;=:@~").encode("ascii")


_SCHEMES = {"http": ("http", "https"), "websocket": ("ws", "wss")}


def build_scope(
    kind: str,
    head: RequestHead,
    ctx: ConnectionContext,
    subprotocols: list[str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The scope of `kind` ("http" or "websocket", with the WebSocket's
    `subprotocols` and `extensions`)."""
    # client_and_secure() and request_path() written out: this runs per
    # request, and a Python call costs more than the test it would save.
    info = ctx.info
    client = info.client
    secure = info.is_tls
    if info.trusted_proxy:
        trusted = ctx.server_state.trusted_proxies
        if trusted is not None:
            client, secure = forwarded_client(head.headers, trusted, client, secure)
    root_path = ctx.config.root_path
    if root_path:
        path = root_path + head.path
        raw_path = _raw_root_path(root_path) + head.raw_path
    else:
        path = head.path
        raw_path = head.raw_path
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": ASGI_VERSIONS,
        "http_version": head.http_version,
        "scheme": _SCHEMES[kind][secure],
        "server": info.server,
        "client": client,
        "root_path": root_path,
        "path": path,
        "raw_path": raw_path,
        "query_string": head.query_string,
        "headers": head.headers,
        "state": ctx.server_state.lifespan_state.copy(),
    }
    if kind == "http":
        scope["method"] = head.method
    else:
        scope["subprotocols"] = subprotocols
        scope["extensions"] = extensions
    return scope


http_scope: Callable[[RequestHead, ConnectionContext], Scope] = partial(build_scope, "http")
"""The scope of one HTTP request (a partial, not a function that calls
`build_scope`: one Python call per request fewer)."""


def websocket_scope(
    head: RequestHead,
    ctx: ConnectionContext,
    subprotocols: list[str],
    extensions: dict[str, Any],
) -> Scope:
    return build_scope("websocket", head, ctx, subprotocols, extensions)
