"""The extension interface (RFC 6455 section 9), shaped like websockets 10's
`websockets.extensions.base`, so that an extension written for the guide's
"write an extension" page keeps its shape:

- `ServerExtensionFactory.process_request_params(params, accepted)` -> the
  response parameters and the `Extension` (or raises `NegotiationError` to
  decline the offer);
- `ClientExtensionFactory.get_request_params()` -> what the client offers,
  and `process_response_params(params, accepted)` -> the `Extension`;
- `Extension.decode(frame, *, max_size=None)` on every frame received and
  `Extension.encode(frame)` on every frame sent, as `Frame` objects.

The engine runs the negotiated extensions frame by frame
(`asgiws.websocket.chain`): `encode` in negotiation order on every frame
sent, `decode` in the reverse order on every frame received; an RSV bit
that no extension cleared in `decode` fails the connection (1002).
Negotiation: `asgiws.extensions.negotiation`.

permessage-deflate (`asgiws.extensions.permessage_deflate`) is built on this
interface; when its negotiated `PerMessageDeflate` is the only extension,
the engine runs it on its fast paths (the C whole-message scanner, inline
frame building, one compressor per connection, the bounded inflate) instead
of frame by frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParameter",
    "Frame",
    "ServerExtensionFactory",
]

ExtensionParameter = tuple[str, str | None]
"""One parameter of an extension offer or response: `("name", "value" or None)`."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket frame as an extension sees it (RFC 6455 5.2)."""

    opcode: int
    data: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


class Extension:
    """A negotiated extension on one connection."""

    name: str
    """The extension's registered name, e.g. "permessage-deflate"."""

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """An incoming frame, after this extension's processing; `max_size`
        bounds what a decoded message may grow to (raise PayloadTooBig)."""
        raise NotImplementedError

    def encode(self, frame: Frame) -> Frame:
        """An outgoing frame, after this extension's processing."""
        raise NotImplementedError


class ClientExtensionFactory:
    """What a client offers, and the extension once the server accepted."""

    name: str

    def get_request_params(self) -> list[ExtensionParameter]:
        """The parameters to offer in Sec-WebSocket-Extensions."""
        raise NotImplementedError

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> Extension:
        """The extension for the server's answer; NegotiationError when the
        answer is not acceptable (the handshake then fails)."""
        raise NotImplementedError


class ServerExtensionFactory:
    """What a server accepts of a client's offer."""

    name: str

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """The response parameters and the extension for one offer;
        NegotiationError to decline it (the next offer is tried)."""
        raise NotImplementedError
