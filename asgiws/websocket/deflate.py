"""permessage-deflate (RFC 7692): negotiation and per-message (de)compression.

`DeflateOptions` is what the operator configured (the server builds it from
`Config.ws_deflate_*`, the client from its keywords),
`DeflateParams` what the handshake agreed on, `MessageDeflate` the per
connection compressor/decompressor built from it.

zlib is zlib-ng's drop-in module when it is installed, the standard
library's otherwise (`zlib_backend` picks it; ASGIWS_ZLIB=stdlib forces the
latter).  Everything below holds on both.  With zlib-ng, compressors and
decompressors come from `_zlib_ng` (zlib-ng's native API, the same calls
and bytes without the package's wrapper) when it is built and binds.

Window bits 8: zlib refuses a raw deflater with wbits=8 (madler/zlib#171),
and so does zlib-ng, so we compress with wbits=9.  That stays within an
8-bit window because neither deflate emits a match distance above
w_size - MIN_LOOKAHEAD (512 - 262 = 250 bytes; zlib-ng checks MAX_DIST in
each of its level strategies), less than the 256 bytes an 8-bit window
holds; the tests inflate our 9-bit output with an 8-bit inflater, at every
level on both libraries, to prove it.  A raw inflater accepts wbits=8 on
current zlib and zlib-ng; older zlibs fall back to 9, which only makes us
more lenient.

A peer that refers further back than the window it agreed to breaks
7.1.2; zlib notices only when the reference reaches before what the same
inflate call produced, so such a message is refused with 1007 when it
arrives in pieces and may inflate when it arrives at once.  Both answers
are safe: the output is bounded by max_size either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiws.websocket.errors import CloseCode, HandshakeError, InvalidResponse, ProtocolError
from asgiws.websocket.frames import encode_header
from asgiws.websocket.headers import ExtensionParams, format_extension, parse_extension_list
from asgiws.websocket.mask import BytesLike, extensions_enabled
from asgiws.websocket.zlib_backend import IS_ZLIB_NG, NATIVE, zlib

EXTENSION_NAME = "permessage-deflate"
TAIL = b"\x00\x00\xff\xff"
"""The 4 octets a compressed message ends with before 7.2.1 strips them."""

# What a server compresses with unless configured otherwise (`Config` takes
# its ws_deflate_* defaults from here).  On Python's zlib, the websockets
# library's choice: a 4 KiB window and memLevel 5, which keeps the
# compressor near 36 KiB per connection instead of ~256 KiB at zlib's 15/8
# for a few percent of ratio.  On zlib-ng a 16 KiB window: its hash table is
# a fixed 128 KiB whatever memLevel (see zlib_backend), swept each time the
# window slides, i.e. after every window's worth of input, so a 4 KiB window
# sweeps it every four 1 KiB messages (~6.5k instructions and ~550 cache
# misses a message) to save 40 KiB of 204; 14 bits measured 13-17 % less
# server CPU per echoed 1 KiB message than 12 (docs/PERFORMANCE.md).
# Level 6 on both: zlib-ng's level 1 is twice as fast but sends ~30% more
# bytes of ordinary text than level 6.
DEFAULT_LEVEL = 6
DEFAULT_MEM_LEVEL = 5
DEFAULT_SERVER_MAX_WINDOW_BITS = 14 if IS_ZLIB_NG else 12
# The window a server asks a client to compress with when the client's offer
# lets it choose (a bare client_max_window_bits): websockets' choice.  The
# server inflates with that window, so a connection that receives compressed
# messages holds 4 KiB of inflate window instead of 32 KiB (a decompressor
# measured 19 KiB instead of 40 on zlib-ng, 12 instead of 40 on Python's
# zlib, once its window is full), and the client compresses with less memory
# and CPU (Autobahn 13.x, whose client sets the pace, measured 1.24-1.54x
# slower per case group at 15 bits than uvicorn's 12).  In exchange, client
# messages compress less well across many messages.  A client that sends no
# client_max_window_bits may use 15 bits whatever we prefer (7.1.2.2).
DEFAULT_CLIENT_MAX_WINDOW_BITS = 12
# RFC 7692 7.1.2.1/7.1.2.2: a window parameter that is absent means the
# full 15-bit window.
RFC_MAX_WINDOW_BITS = 15


@dataclass(frozen=True, slots=True)
class DeflateOptions:
    """What this endpoint is willing to do (server) or asks for (client).

    Field names are RFC 7692's: `server_*` constrain the server's compressor,
    `client_*` the client's.  `client_max_window_bits=None` means, on a
    server, DEFAULT_CLIENT_MAX_WINDOW_BITS when the client's offer lets it
    choose (else as offered), and on a client "any window, but say we support
    the parameter".
    """

    level: int = DEFAULT_LEVEL
    mem_level: int = DEFAULT_MEM_LEVEL
    server_max_window_bits: int = DEFAULT_SERVER_MAX_WINDOW_BITS
    client_max_window_bits: int | None = None
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated configuration of one connection."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = RFC_MAX_WINDOW_BITS
    client_max_window_bits: int = RFC_MAX_WINDOW_BITS
    level: int = DEFAULT_LEVEL
    mem_level: int = DEFAULT_MEM_LEVEL

    def codec(self, *, is_server: bool) -> MessageDeflate:
        """A fresh compressor/decompressor pair for one connection."""
        return MessageDeflate(self, is_server=is_server)


def deflate_output(compressor: Any, data: BytesLike, flush_mode: int, *, fin: bool) -> bytes:
    """`data` through a zlib compressobj, then `flush_mode`; the end of a
    message (`fin`) without the 4 octets 7.2.1 removes."""
    head = compressor.compress(data)
    tail = compressor.flush(flush_mode)
    out: bytes = head + tail if head else tail
    if fin and out.endswith(TAIL):
        # 7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
        # tail end."  (Both flushes end with that empty stored block.)
        out = out[:-4]
    return out


def python_deflate_frame(compressor: Any, data: BytesLike, flush_mode: int, opcode: int) -> bytes:
    """A whole message compressed into one unmasked frame, FIN and RSV1 set
    (RFC 7692 6.1): what a server sends.  The C `deflate_frame` builds the
    same bytes with one allocation."""
    payload = deflate_output(compressor, data, flush_mode, fin=True)
    return encode_header(opcode, len(payload), rsv1=True) + payload


DeflateFrame = Callable[[Any, BytesLike, int, int], bytes]
c_deflate_frame: DeflateFrame | None = None
if extensions_enabled():
    try:
        from asgiws.websocket._speedups import deflate_frame as _c_deflate_frame
    except ImportError:  # not built, or built before deflate_frame
        pass
    else:
        c_deflate_frame = _c_deflate_frame

codecs: Any = zlib if NATIVE is None else NATIVE
"""Where compressors and decompressors come from: `compressobj(level,
method, wbits, memLevel)` and `decompressobj(wbits=)` of zlib's API."""

deflate_frame: DeflateFrame = (
    (c_deflate_frame or python_deflate_frame) if NATIVE is None else NATIVE.deflate_frame
)
"""Builds a whole server message's frame from one of `codecs`' compressors."""


SharedCompressionKey = tuple[int, int, int]
"""(level, memLevel, window bits) of a compressor that starts every message
from an empty window: the compressed bytes of a message depend on nothing
else, so connections with equal keys can share them (`shared_compressor`)."""


def shared_compressor(key: SharedCompressionKey) -> MessageDeflate:
    """A server compressor whose `compress(message)` gives the bytes any
    connection with `key` may send for that message (RSV1 set): each message
    ends with Z_FULL_FLUSH, so one compressor serves message after message."""
    level, mem_level, window_bits = key
    params = DeflateParams(
        server_no_context_takeover=True,
        server_max_window_bits=window_bits,
        level=level,
        mem_level=mem_level,
    )
    return MessageDeflate(params, is_server=True)


class MessageDeflate:
    """Compresses our messages and inflates the peer's, keeping the LZ77
    context across messages unless no_context_takeover applies.

    One compressor per connection for its whole life: with our
    no_context_takeover, each message ends with Z_FULL_FLUSH instead of
    Z_SYNC_FLUSH, which clears the match history, so the next message cannot
    refer to this one -- what a fresh compressor gives, without allocating
    and initialising one (hundreds of KiB at 15 window bits) per message.
    """

    __slots__ = (
        "_compress_wbits",
        "_compressor",
        "_decompress_wbits",
        "_decompressor",
        "_final_flush",
        "_level",
        "_local_reset",
        "_mem_level",
        "_remote_reset",
    )

    def __init__(self, params: DeflateParams, *, is_server: bool) -> None:
        if is_server:
            local_bits, remote_bits = params.server_max_window_bits, params.client_max_window_bits
            self._local_reset = params.server_no_context_takeover
            self._remote_reset = params.client_no_context_takeover
        else:
            local_bits, remote_bits = params.client_max_window_bits, params.server_max_window_bits
            self._local_reset = params.client_no_context_takeover
            self._remote_reset = params.server_no_context_takeover
        self._compress_wbits = -max(local_bits, 9)  # see the module docstring
        self._decompress_wbits = -remote_bits
        self._level = params.level
        self._mem_level = params.mem_level
        self._compressor: Any = None
        self._decompressor: Any = None
        # 7.1.1.1: with no_context_takeover the endpoint "MUST start
        # compressing each new message with an empty LZ77 sliding window";
        # Z_FULL_FLUSH at the end of each message guarantees exactly that.
        self._final_flush = zlib.Z_FULL_FLUSH if self._local_reset else zlib.Z_SYNC_FLUSH

    @property
    def shared_key(self) -> SharedCompressionKey | None:
        """What our compressed messages depend on when each starts from an
        empty window (our side's no_context_takeover); None with context
        takeover, where every message depends on this connection's past."""
        if not self._local_reset:
            return None
        return (self._level, self._mem_level, -self._compress_wbits)

    # --- sending ----------------------------------------------------------------
    def _new_compressor(self) -> Any:
        c = self._compressor = codecs.compressobj(
            self._level, zlib.DEFLATED, self._compress_wbits, self._mem_level
        )
        return c

    def compress(self, data: BytesLike, *, fin: bool = True) -> bytes:
        """Compress a whole message (`fin`) or one fragment of it."""
        c = self._compressor
        if c is None:
            c = self._new_compressor()
        return deflate_output(c, data, self._final_flush if fin else zlib.Z_SYNC_FLUSH, fin=fin)

    def compress_frame(self, opcode: int, data: BytesLike) -> bytes:
        """A whole message compressed into one unmasked frame (a server's):
        `compress(data)` behind its header, FIN and RSV1 set."""
        c = self._compressor
        if c is None:
            c = self._new_compressor()
        return deflate_frame(c, data, self._final_flush, opcode)

    # --- receiving --------------------------------------------------------------
    def _new_decompressor(self) -> Any:
        try:
            d = codecs.decompressobj(wbits=self._decompress_wbits)
        except ValueError:  # an old zlib without raw 8-bit inflate
            d = codecs.decompressobj(wbits=-9)
        self._decompressor = d
        return d

    def decompress(self, data: bytes, limit: int | None) -> bytes:
        """Inflate the next compressed bytes of a message, producing at most
        `limit` bytes: inflating stops at limit + 1, so a bomb costs no more
        memory than the limit before it is refused with 1009."""
        d = self._decompressor
        if d is None:
            d = self._new_decompressor()
        try:
            if limit is None:
                return d.decompress(data)  # type: ignore[no-any-return]
            out: bytes = d.decompress(data, limit + 1)
        except zlib.error as exc:  # the backend's own class (zlib-ng's is not zlib's)
            raise ProtocolError(CloseCode.INVALID_DATA, f"invalid compressed data: {exc}") from None
        if len(out) > limit:
            raise ProtocolError(
                CloseCode.MESSAGE_TOO_BIG, "message exceeds the size limit after decompression"
            )
        return out

    def decompress_message(self, data: bytes, limit: int | None) -> bytes:
        """A whole compressed message in one piece: `decompress` + `finish`
        in one inflate call (the tail appended to the data)."""
        return self.inflate_message(data + TAIL, limit)

    def inflate_message(self, data: bytes, limit: int | None) -> bytes:
        """`decompress_message` of data that already ends with the 4 octets
        of 7.2.2 (as the C scanner hands a compressed message out).

        `decompress` and `_end_message` written out: this runs once per
        received message."""
        d = self._decompressor
        if d is None:
            d = self._new_decompressor()
        try:
            out: bytes = d.decompress(data) if limit is None else d.decompress(data, limit + 1)
        except zlib.error as exc:
            raise ProtocolError(CloseCode.INVALID_DATA, f"invalid compressed data: {exc}") from None
        if limit is not None and len(out) > limit:
            raise ProtocolError(
                CloseCode.MESSAGE_TOO_BIG, "message exceeds the size limit after decompression"
            )
        if self._remote_reset or d.eof:  # see _end_message
            self._decompressor = None
        return out

    def finish(self, limit: int | None) -> bytes:
        """End of a compressed message: 7.2.2 "Append 4 octets of 0x00 0x00
        0xff 0xff to the tail end of the payload of the message" and inflate."""
        out = self.decompress(TAIL, limit)
        self._end_message()
        return out

    def _end_message(self) -> None:
        d = self._decompressor
        # A peer may end a message with a BFINAL block (7.2.3.3); the stream is
        # over then, so the next message starts a new one.
        if self._remote_reset or d.eof:
            self._decompressor = None


# --- negotiation ----------------------------------------------------------------


def _window_bits(value: str | None) -> int | None:
    """7.1.2: "The value ... MUST be a decimal integer value without leading
    zeroes between 8 and 15 inclusive"; None when it is not."""
    if value is None or not value.isdigit() or value.startswith("0") or not value.isascii():
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def accept_offer(
    params: ExtensionParams, options: DeflateOptions
) -> tuple[ExtensionParams, DeflateParams] | None:
    """Server: the response parameters and the agreed configuration for one
    offer's parameters, or None to decline it."""
    # RFC 7692 section 7: "A server MUST decline an extension negotiation offer
    # for this extension if any of the following conditions are met: The
    # negotiation offer contains an extension parameter not defined for use in
    # an offer. The negotiation offer contains an extension parameter with an
    # invalid value. The negotiation offer contains multiple extension
    # parameters with the same name. The server doesn't support the offered
    # configuration."
    seen: set[str] = set()
    server_nct = client_nct = False
    offered_server_bits: int | None = None
    offered_client_bits: int | None = None
    client_bits_offered = False
    for name, value in params:
        if name in seen:
            return None
        seen.add(name)
        if name == "server_no_context_takeover":
            if value is not None:
                return None
            server_nct = True
        elif name == "client_no_context_takeover":
            if value is not None:
                return None
            client_nct = True
        elif name == "server_max_window_bits":
            offered_server_bits = _window_bits(value)
            if offered_server_bits is None:
                return None
        elif name == "client_max_window_bits":
            client_bits_offered = True
            if value is not None:
                offered_client_bits = _window_bits(value)
                if offered_client_bits is None:
                    return None
        else:
            return None

    response: ExtensionParams = []
    server_nct = server_nct or options.server_no_context_takeover
    client_nct = client_nct or options.client_no_context_takeover
    if server_nct:
        # 7.1.1.1: a server accepts the parameter "by including the
        # server_no_context_takeover extension parameter in the ... response"
        response.append(("server_no_context_takeover", None))
    if client_nct:
        response.append(("client_no_context_takeover", None))

    server_bits = options.server_max_window_bits
    if offered_server_bits is not None:
        # 7.1.2.1: the server accepts "by including the server_max_window_bits
        # extension parameter in the ... response ... with the same or smaller
        # value as the offer"
        server_bits = min(server_bits, offered_server_bits)
        response.append(("server_max_window_bits", str(server_bits)))
    elif server_bits < 15:
        response.append(("server_max_window_bits", str(server_bits)))

    client_bits = RFC_MAX_WINDOW_BITS
    if client_bits_offered:
        ours = options.client_max_window_bits
        client_bits = min(
            DEFAULT_CLIENT_MAX_WINDOW_BITS if ours is None else ours,
            RFC_MAX_WINDOW_BITS if offered_client_bits is None else offered_client_bits,
        )
        response.append(("client_max_window_bits", str(client_bits)))
    # else 7.1.2.2: "If a received extension negotiation offer doesn't have the
    # client_max_window_bits extension parameter, the corresponding extension
    # negotiation response to the offer MUST NOT include the
    # client_max_window_bits extension parameter." The client may use 15 bits.

    agreed = DeflateParams(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
        level=options.level,
        mem_level=options.mem_level,
    )
    return response, agreed


def negotiate(
    offer_header_values: list[str], options: DeflateOptions
) -> tuple[str, DeflateParams] | None:
    """Server: accept the first acceptable permessage-deflate offer.

    Returns the Sec-WebSocket-Extensions value for the 101 and the agreed
    parameters, or None when no offer is acceptable (the connection then runs
    uncompressed).  Raises HandshakeError(400) when the header does not parse.
    """
    try:
        offers = parse_extension_list(offer_header_values)
    except ValueError as exc:
        raise HandshakeError(400, f"invalid Sec-WebSocket-Extensions header: {exc}") from None
    for name, params in offers:
        if name == EXTENSION_NAME:
            accepted = accept_offer(params, options)
            if accepted is not None:
                response, agreed = accepted
                return format_extension(EXTENSION_NAME, response), agreed
    return None


def client_offer(options: DeflateOptions) -> str:
    """Client: the Sec-WebSocket-Extensions value offering permessage-deflate."""
    return format_extension(EXTENSION_NAME, client_offer_params(options))


def client_offer_params(options: DeflateOptions) -> ExtensionParams:
    """Client: the parameters of our permessage-deflate offer."""
    params: ExtensionParams = []
    if options.server_no_context_takeover:
        params.append(("server_no_context_takeover", None))
    if options.client_no_context_takeover:
        params.append(("client_no_context_takeover", None))
    if options.server_max_window_bits < 15:
        params.append(("server_max_window_bits", str(options.server_max_window_bits)))
    # 7.1.2.2: without a value it only says we support the parameter, so the
    # server may choose a smaller window for us.
    bits = options.client_max_window_bits
    params.append(("client_max_window_bits", None if bits is None else str(bits)))
    return params


def client_accept(response_value: str, options: DeflateOptions) -> DeflateParams:
    """Client: check the server's answer to `client_offer(options)`.

    RFC 7692 section 5: "If a received extension negotiation response [is
    unacceptable], the client MUST _Fail the WebSocket Connection_."
    Raises InvalidResponse (status 101) on any answer we did not allow.
    """

    def bad(reason: str) -> InvalidResponse:
        return InvalidResponse(101, f"invalid permessage-deflate response: {reason}")

    try:
        extensions = parse_extension_list([response_value])
    except ValueError as exc:
        raise bad(str(exc)) from None
    if len(extensions) != 1 or extensions[0][0] != EXTENSION_NAME:
        raise bad(f"server accepted extensions we did not offer: {response_value!r}")
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | None = None
    for name, value in extensions[0][1]:
        if name in seen:
            raise bad(f"duplicate parameter {name}")
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise bad(f"{name} takes no value")
            if name == "server_no_context_takeover":
                server_nct = True
            else:
                client_nct = True
        elif name == "server_max_window_bits":
            server_bits = _window_bits(value)
            if server_bits is None:
                raise bad(f"server_max_window_bits={value}")
            if server_bits > options.server_max_window_bits:
                raise bad("server_max_window_bits larger than requested")
        elif name == "client_max_window_bits":
            client_bits = _window_bits(value)
            if client_bits is None:
                raise bad(f"client_max_window_bits={value}")
            if options.client_max_window_bits is not None and (
                client_bits > options.client_max_window_bits
            ):
                raise bad("client_max_window_bits larger than offered")
        else:
            raise bad(f"unknown parameter {name}")
    if options.server_no_context_takeover and not server_nct:
        raise bad("server_no_context_takeover requested but not accepted")
    if options.server_max_window_bits < 15 and server_bits is None:
        raise bad("server_max_window_bits requested but not accepted")
    if client_bits is None:
        client_bits = options.client_max_window_bits or 15
    return DeflateParams(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct or options.client_no_context_takeover,
        server_max_window_bits=server_bits if server_bits is not None else 15,
        client_max_window_bits=client_bits,
        level=options.level,
        mem_level=options.mem_level,
    )
