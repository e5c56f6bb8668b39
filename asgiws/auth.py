"""HTTP Basic Auth for `serve()` (RFC 7617), as websockets 10 offers it:

    serve(handler, host, port,
          create_protocol=basic_auth_protocol_factory(
              realm="my dev server", credentials=("hello", "iloveyou")))

A request without valid credentials gets `401 Unauthorized` with
`WWW-Authenticate: Basic realm="...", charset="UTF-8"` before any WebSocket
is opened; an accepted one has `websocket.username` set.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import http
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgiws.datastructures import Headers
from asgiws.protocol import HTTPResponse, WebSocketServerProtocol

__all__ = [
    "BasicAuthWebSocketServerProtocol",
    "basic_auth_protocol_factory",
    "parse_authorization_basic",
]

CheckCredentials = Callable[[str, str], Awaitable[bool]]


def parse_authorization_basic(value: str) -> tuple[str, str]:
    """`Basic dXNlcjpwYXNz` -> ("user", "pass"); ValueError when it is not
    Basic credentials (RFC 7617 2: token68 of base64("user-id:password"))."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise ValueError("not Basic credentials")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("credentials are not base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise ValueError("credentials lack the ':' between user and password")
    return username, password


def _www_authenticate(realm: str) -> str:
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{quoted}", charset="UTF-8"'


class BasicAuthWebSocketServerProtocol(WebSocketServerProtocol):
    """Checks the Authorization header in `process_request`; a subclass may
    override `check_credentials`."""

    __slots__ = ("_check", "realm", "username")

    def __init__(
        self,
        *args: Any,
        realm: str | None = None,
        check_credentials: CheckCredentials | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.realm = realm or ""
        self._check = check_credentials
        self.username: str | None = None

    async def check_credentials(self, username: str, password: str) -> bool:
        """Whether these credentials are valid; by default asks the
        `check_credentials` given to the factory and refuses without one."""
        if self._check is None:
            return False
        return await self._check(username, password)

    async def process_request(self, path: str, request_headers: Headers) -> HTTPResponse | None:
        value = request_headers.get("Authorization")
        if value is None:
            return self._unauthorized(b"Missing credentials\n")
        try:
            username, password = parse_authorization_basic(value)
        except ValueError:
            return self._unauthorized(b"Unsupported credentials\n")
        if not await self.check_credentials(username, password):
            return self._unauthorized(b"Invalid credentials\n")
        self.username = username
        return await super().process_request(path, request_headers)

    def _unauthorized(self, body: bytes) -> HTTPResponse:
        headers = [("WWW-Authenticate", _www_authenticate(self.realm))]
        return http.HTTPStatus.UNAUTHORIZED, headers, body


def basic_auth_protocol_factory(
    realm: str | None = None,
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: CheckCredentials | None = None,
    create_protocol: Callable[..., BasicAuthWebSocketServerProtocol] | None = None,
) -> Callable[..., BasicAuthWebSocketServerProtocol]:
    """A `create_protocol` for `serve()` that enforces HTTP Basic Auth.

    Give either `credentials` (one `(username, password)` pair or several)
    or `check_credentials`, a coroutine function `(username, password) ->
    bool`.  `create_protocol` may name a subclass of
    `BasicAuthWebSocketServerProtocol`.
    """
    if (credentials is None) == (check_credentials is None):
        raise TypeError("provide either credentials or check_credentials")
    if credentials is not None:
        if isinstance(credentials, tuple) and len(credentials) == 2 and all(
            isinstance(part, str) for part in credentials
        ):
            pairs: list[tuple[str, str]] = [credentials]  # type: ignore[list-item]
        else:
            pairs = list(credentials)  # type: ignore[arg-type]
            if not all(
                isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
                for p in pairs
            ):
                raise TypeError(f"invalid credentials argument: {credentials!r}")
        known = dict(pairs)

        async def check_known(username: str, password: str) -> bool:
            expected = known.get(username)
            # Compared in constant time, so that the time taken does not
            # tell how much of a password was right.
            return expected is not None and hmac.compare_digest(
                expected.encode("utf-8"), password.encode("utf-8")
            )

        check_credentials = check_known
    factory = create_protocol or BasicAuthWebSocketServerProtocol
    return functools.partial(factory, realm=realm, check_credentials=check_credentials)
