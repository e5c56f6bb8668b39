"""Negotiating a chain of extensions in the opening handshake (RFC 6455 9.1).

Used when `extensions=` names any extension other than permessage-deflate
(permessage-deflate alone keeps the engine's own negotiation, from the
`ws_deflate_*` options).  The rules are the websockets library's:

- server: each offer in the client's `Sec-WebSocket-Extensions`, in order,
  is tried against the factories, in order; the first factory of that name
  whose `process_request_params` does not raise `NegotiationError` accepts
  it.  The response lists the accepted extensions in offer order, which is
  the order they run in ("the order in which the extensions are listed in
  the header field [...] the order of the operations");
- client: every factory's `get_request_params` is offered, in order; each
  extension of the server's answer, in order, goes to the first factory of
  that name that accepts it, and one that none accepts fails the handshake.

`engine_arguments` then picks the engine's mode: permessage-deflate alone
runs on the fast paths, anything else frame by frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiws.exceptions import NegotiationError
from asgiws.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ServerExtensionFactory,
)
from asgiws.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    is_deflate_factory,
)
from asgiws.websocket.deflate import DeflateOptions
from asgiws.websocket.errors import HandshakeError
from asgiws.websocket.headers import format_extension, parse_extension_list

__all__ = [
    "accept_response",
    "client_factories",
    "client_offer_value",
    "engine_arguments",
    "extension_names",
    "negotiate_server",
    "server_factories",
]


def _chain(extensions: Sequence[Any] | None, deflate: Any | None) -> tuple[Any, ...]:
    """`extensions` as a chain, `deflate` (a factory) last unless the list
    has one; () when the list names no extension but permessage-deflate."""
    factories = list(extensions or ())
    if all(is_deflate_factory(f) for f in factories):
        return ()
    if deflate is not None and not any(is_deflate_factory(f) for f in factories):
        factories.append(deflate)
    return tuple(factories)


def server_factories(
    extensions: Sequence[Any] | None, deflate: DeflateOptions | None
) -> tuple[ServerExtensionFactory, ...]:
    """The factories a server negotiates with itself: () when `extensions=`
    is empty or permessage-deflate only (the engine negotiates that from its
    options).  As websockets' `compression="deflate"`, a permessage-deflate
    factory with the server's settings goes last unless the list has one."""
    factory = None if deflate is None else ServerPerMessageDeflateFactory.from_options(deflate)
    return _chain(extensions, factory)


def client_factories(
    extensions: Sequence[Any] | None, deflate: DeflateOptions | None
) -> tuple[ClientExtensionFactory, ...]:
    """As `server_factories`, for `connect()`."""
    factory = None if deflate is None else ClientPerMessageDeflateFactory.from_options(deflate)
    return _chain(extensions, factory)


def negotiate_server(
    offer_header_values: list[str], factories: Sequence[ServerExtensionFactory]
) -> tuple[str | None, list[Extension]]:
    """Server: the response's Sec-WebSocket-Extensions value (None: none
    accepted) and the accepted extensions in order.  HandshakeError(400)
    when the header does not parse."""
    try:
        offers = parse_extension_list(offer_header_values)
    except ValueError as exc:
        raise HandshakeError(400, f"invalid Sec-WebSocket-Extensions header: {exc}") from None
    accepted: list[Extension] = []
    response: list[str] = []
    for name, params in offers:
        for factory in factories:
            if factory.name != name:
                continue
            try:
                answer, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue  # declined: the next factory, then the next offer
            accepted.append(extension)
            response.append(format_extension(name, list(answer)))
            break
    return (", ".join(response) or None), accepted


def client_offer_value(factories: Sequence[ClientExtensionFactory]) -> str | None:
    """Client: the Sec-WebSocket-Extensions value offering every factory."""
    offers = [format_extension(f.name, list(f.get_request_params())) for f in factories]
    return ", ".join(offers) or None


def accept_response(
    response_header_values: list[str], factories: Sequence[ClientExtensionFactory]
) -> list[Extension]:
    """Client: the extensions of the server's answer, in its order.
    NegotiationError for one we did not offer or cannot accept (RFC 6455
    4.1: the client "MUST _Fail the WebSocket Connection_")."""
    try:
        answers = parse_extension_list(response_header_values)
    except ValueError as exc:
        raise NegotiationError(f"invalid Sec-WebSocket-Extensions header: {exc}") from None
    accepted: list[Extension] = []
    for name, params in answers:
        for factory in factories:
            if factory.name != name:
                continue
            try:
                accepted.append(factory.process_response_params(params, accepted))
            except NegotiationError:
                continue
            break
        else:
            raise NegotiationError(f"unsupported extension in the response: {name} {params!r}")
    return accepted


def engine_arguments(accepted: Sequence[Extension]) -> dict[str, Any]:
    """The engine's `deflate=` or `extensions=` for what was agreed:
    permessage-deflate alone (our own class, not a subclass that may change
    what it does) runs on the fast paths with its params; any other chain
    frame by frame."""
    if not accepted:
        return {}
    if len(accepted) == 1 and type(accepted[0]) is PerMessageDeflate:
        return {"deflate": accepted[0].params}
    return {"extensions": tuple(accepted)}


def extension_names(arguments: dict[str, Any]) -> str | None:
    """What `engine_arguments` runs, for a log line: "permessage-deflate",
    the chain's names in order, or None."""
    if "deflate" in arguments:
        return PerMessageDeflate.name
    return ", ".join(e.name for e in arguments.get("extensions", ())) or None
