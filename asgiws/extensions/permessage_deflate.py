"""permessage-deflate (RFC 7692) on the extension interface.

The factories negotiate with the same code the engine's handshake uses
(`asgiws.websocket.deflate`); `PerMessageDeflate` is the negotiated
extension.  When it is the only extension agreed, the engine does not call
its `decode`/`encode`: it takes the agreed `params` and compresses whole
messages on its fast paths.  Stacked with other extensions, it runs frame
by frame in the chain like any extension, with the same codec
(`MessageDeflate`) and the same bounded inflate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from asgiws.exceptions import NegotiationError, PayloadTooBig, ProtocolError
from asgiws.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    Frame,
    ServerExtensionFactory,
)
from asgiws.websocket import deflate as _deflate
from asgiws.websocket.errors import CloseCode
from asgiws.websocket.errors import InvalidResponse as _InvalidResponse
from asgiws.websocket.errors import ProtocolError as _EngineProtocolError
from asgiws.websocket.headers import format_extension

__all__ = [
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
]

_CONTROL = 0x8
_CONTINUATION = 0x0


class PerMessageDeflate(Extension):
    """permessage-deflate as agreed on one connection (`params`)."""

    name = _deflate.EXTENSION_NAME

    def __init__(self, params: _deflate.DeflateParams, *, is_server: bool) -> None:
        self.params = params
        self.is_server = is_server
        self._codec = params.codec(is_server=is_server)
        self._decoding = False  # inside a compressed incoming message
        self._encoding = False  # inside an outgoing fragmented message
        self._size = 0

    def __repr__(self) -> str:
        return f"PerMessageDeflate({self.params!r})"

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode >= _CONTROL:
            return frame
        first = frame.opcode != _CONTINUATION
        if first:
            if not frame.rsv1:
                return frame  # RFC 7692 6.1: an uncompressed message
            self._decoding, self._size = True, 0
        elif not self._decoding:
            return frame
        limit = None if max_size is None else max_size - self._size
        try:
            data = self._codec.decompress(frame.data, limit)
            if frame.fin:
                more = self._codec.finish(None if limit is None else limit - len(data))
                data += more
                self._decoding = False
        except _EngineProtocolError as exc:
            if exc.code == CloseCode.MESSAGE_TOO_BIG:
                raise PayloadTooBig(exc.reason) from None
            raise ProtocolError(exc.reason) from None
        self._size += len(data)
        # 6.1: RSV1 means "compressed" on a message's first frame only; left
        # set on a continuation frame, the engine fails it (no extension
        # defines it there).
        return dataclasses.replace(frame, data=data, rsv1=frame.rsv1 and not first)

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode >= _CONTROL:
            return frame
        first = frame.opcode != _CONTINUATION
        data = self._codec.compress(frame.data, fin=frame.fin)
        self._encoding = not frame.fin
        # 6.1: the Per-Message Compressed bit goes on the first frame only.
        return dataclasses.replace(frame, data=data, rsv1=first)


def _options(**kwargs: Any) -> _deflate.DeflateOptions:
    # The websockets keyword names; the defaults are the engine's.
    names = {
        "server_no_context_takeover", "client_no_context_takeover",
        "server_max_window_bits", "client_max_window_bits",
    }
    unknown = set(kwargs) - names - {"compress_settings"}
    if unknown:
        raise TypeError(f"unexpected argument(s): {', '.join(sorted(unknown))}")
    settings = kwargs.pop("compress_settings", None) or {}
    values = {k: v for k, v in kwargs.items() if v is not None}
    if "level" in settings:
        values["level"] = settings["level"]
    if "memLevel" in settings:
        values["mem_level"] = settings["memLevel"]
    return _deflate.DeflateOptions(**values)


class ServerPerMessageDeflateFactory(ServerExtensionFactory):
    """Accepts the client's first acceptable permessage-deflate offer.

    Arguments as websockets': `server_no_context_takeover`,
    `client_no_context_takeover`, `server_max_window_bits`,
    `client_max_window_bits`, `compress_settings` (`{"level": ...,
    "memLevel": ...}`)."""

    name = _deflate.EXTENSION_NAME

    def __init__(self, **kwargs: Any) -> None:
        self.options = _options(**kwargs)

    @classmethod
    def from_options(cls, options: _deflate.DeflateOptions) -> ServerPerMessageDeflateFactory:
        """The factory for settings already checked (`compression="deflate"`)."""
        factory = cls()
        factory.options = options
        return factory

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        if any(e.name == self.name for e in accepted_extensions):
            raise NegotiationError(f"skipped duplicate {self.name}")
        accepted = _deflate.accept_offer(list(params), self.options)
        if accepted is None:
            raise NegotiationError(f"unsupported {self.name} offer: {params!r}")
        response, agreed = accepted
        return response, PerMessageDeflate(agreed, is_server=True)


class ClientPerMessageDeflateFactory(ClientExtensionFactory):
    """Offers permessage-deflate and checks the server's answer (arguments
    as `ServerPerMessageDeflateFactory`)."""

    name = _deflate.EXTENSION_NAME

    def __init__(self, **kwargs: Any) -> None:
        self.options = _options(**kwargs)

    @classmethod
    def from_options(cls, options: _deflate.DeflateOptions) -> ClientPerMessageDeflateFactory:
        """The factory for settings already checked (`compression="deflate"`)."""
        factory = cls()
        factory.options = options
        return factory

    def get_request_params(self) -> list[ExtensionParameter]:
        return _deflate.client_offer_params(self.options)

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> Extension:
        if any(e.name == self.name for e in accepted_extensions):
            raise NegotiationError(f"received duplicate {self.name}")
        try:
            agreed = _deflate.client_accept(format_extension(self.name, list(params)), self.options)
        except _InvalidResponse as exc:
            raise NegotiationError(exc.reason) from None
        return PerMessageDeflate(agreed, is_server=False)


def is_deflate_factory(factory: object) -> bool:
    """Whether `factory` is one of ours for permessage-deflate."""
    return isinstance(factory, (ServerPerMessageDeflateFactory, ClientPerMessageDeflateFactory))


def deflate_options_of(extensions: Sequence[Any] | None) -> _deflate.DeflateOptions | None:
    """The permessage-deflate options the engine runs with on its fast paths,
    from `extensions=`: those of the first permessage-deflate factory when
    the list has no other extension; None otherwise (no such factory, or an
    extension chain, which `asgiws.extensions.negotiation` runs)."""
    factories = list(extensions or [])
    if not all(is_deflate_factory(f) for f in factories):
        return None
    return next((f.options for f in factories), None)
