"""Fuzz targets: one function per parser, bytes in, an exception on a bug.

Each target feeds arbitrary bytes to one parser and checks what must hold
for ANY input, not only for valid ones:

- it raises nothing but its documented error type;
- what it accepts obeys its limits (sizes, ranges, characters);
- two ways of computing the same answer agree: any split of the bytes and
  the whole, the C accelerator and the pure-Python path, h11 and httptools.

The atheris runner (`tests/fuzz/runner.py`) and pytest (`test_fuzz.py`,
which replays the seeds and every saved finding) call the same functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from asgiws.http import wire as _wire_module
from asgiws.http.parser import (
    BodyChunk,
    H11Parser,
    HttptoolsParser,
    ParseFailed,
    ParserEvent,
    RequestEnded,
    RequestStarted,
)
from asgiws.uri import InvalidURI, parse_uri
from asgiws.websocket import frames as _frames_module
from asgiws.websocket.connection import ClientEngine, Engine, ServerEngine
from asgiws.websocket.deflate import (
    DeflateOptions,
    DeflateParams,
    MessageDeflate,
    client_accept,
    negotiate,
)
from asgiws.websocket.errors import HandshakeError, InvalidResponse, ProtocolError
from asgiws.websocket.events import BytesMessage, ConnectionFailed, Event, TextMessage
from asgiws.websocket.handshake import (
    accept_headers,
    validate_request,
    validate_response,
)
from asgiws.websocket.headers import parse_extension_list
from asgiws.websocket.mask import PythonPayloadAssembler, python_apply_mask

# The engine's fast paths are module attributes looked up at use, so the
# harness can swap them (typed loosely: they are not the module's API).
frames_module: Any = _frames_module
wire_module: Any = _wire_module


class Finding(AssertionError):
    """A property that must hold for any input did not."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Finding(message)


def pieces(data: bytes, size: int) -> list[bytes]:
    """`data` cut into `size`-byte pieces (size 0: one piece)."""
    if size <= 0 or size >= len(data):
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- WebSocket engine ----------------------------------------------------------------

# The C accelerator under test: `runner.py` swaps in a build instrumented
# for coverage; otherwise whatever the package imported (None without it).
C_SCAN_FRAMES = frames_module.c_scan_frames
C_PAYLOAD_ASSEMBLER = (
    frames_module.PayloadAssembler
    if frames_module.PayloadAssembler is not PythonPayloadAssembler
    else None
)
C_APPLY_MASK = (
    frames_module.apply_mask if frames_module.apply_mask is not python_apply_mask else None
)

_MAX_SIZES: tuple[int | None, ...] = (None, 0, 100, 2**20)
_WINDOW_BITS = (8, 9, 12, 15)
# Small enough that fuzzed frames reach the big-frame assembler.
_SMALL_ASSEMBLE_THRESHOLD = 8


@dataclass(frozen=True, slots=True)
class EngineSetup:
    server: bool
    deflate: DeflateParams | None
    max_size: int | None
    piece: int  # how the stream is cut for the first run (0: whole)


def engine_setup(flags: int, piece: int) -> EngineSetup:
    """Byte 0 of an engine input: role, deflate and its parameters, max_size."""
    deflate = None
    if flags & 0x02:
        deflate = DeflateParams(
            server_no_context_takeover=bool(flags & 0x04),
            client_no_context_takeover=bool(flags & 0x08),
            server_max_window_bits=_WINDOW_BITS[(flags >> 6) & 3],
            client_max_window_bits=_WINDOW_BITS[(flags >> 6) & 3],
        )
    return EngineSetup(
        server=not flags & 0x01,
        deflate=deflate,
        max_size=_MAX_SIZES[(flags >> 4) & 3],
        piece=piece,
    )


@contextmanager
def engine_paths(*, use_c: bool) -> Iterator[None]:
    """Run the engine on the C accelerator (with a tiny big-frame threshold,
    so short inputs reach the assembler) or on the pure-Python paths."""
    saved = (
        frames_module.c_scan_frames,
        frames_module.PayloadAssembler,
        frames_module.apply_mask,
        frames_module.ASSEMBLE_THRESHOLD,
    )
    if use_c:
        frames_module.c_scan_frames = C_SCAN_FRAMES
        frames_module.PayloadAssembler = C_PAYLOAD_ASSEMBLER or PythonPayloadAssembler
        frames_module.apply_mask = C_APPLY_MASK or python_apply_mask
        frames_module.ASSEMBLE_THRESHOLD = _SMALL_ASSEMBLE_THRESHOLD
    else:
        frames_module.c_scan_frames = None
        frames_module.PayloadAssembler = PythonPayloadAssembler
        frames_module.apply_mask = python_apply_mask
    try:
        yield
    finally:
        (
            frames_module.c_scan_frames,
            frames_module.PayloadAssembler,
            frames_module.apply_mask,
            frames_module.ASSEMBLE_THRESHOLD,
        ) = saved


@dataclass(frozen=True, slots=True)
class EngineRun:
    events: list[Event]
    sent: list[bytes]
    state: tuple[object, ...]


def run_engine(setup: EngineSetup, stream: bytes, piece: int) -> EngineRun:
    """Feed `stream` in `piece`-byte pieces, then EOF; only the engine's
    documented results may come out: events, bytes to send, no exception."""
    engine: Engine = (ServerEngine if setup.server else ClientEngine)(
        max_size=setup.max_size, deflate=setup.deflate
    )
    events: list[Event] = []
    sent: list[bytes] = []
    for chunk in pieces(stream, piece):
        events += engine.receive_data(chunk)
        sent += engine.data_to_send()
    events += engine.receive_eof()
    sent += engine.data_to_send()
    state = (engine.our_state, engine.their_state, engine.close_code)
    return EngineRun(events, sent, state)


def comparable(events: list[Event]) -> list[object]:
    """Events with a failure's reason dropped: where a stream is cut decides
    which of two faults in one message is met first (bad UTF-8 in the part
    inflated so far, or bad deflate data after it)."""
    return [
        _FAILED
        if isinstance(e, ConnectionFailed) and e.code in _DATA_FAULTS
        else (e.code,)
        if isinstance(e, ConnectionFailed)
        else e
        for e in events
    ]


# A compressed text message with bad UTF-8 that also inflates past max_size:
# inflated piece by piece, the bad byte is met first (1007); in one piece,
# inflating stops at the limit (1009).  Either code is a right answer to
# that message; every other failure must be the same however the bytes came.
_DATA_FAULTS = (1007, 1009)
_FAILED = ("1007 or 1009",)


def past_the_window(setup: EngineSetup, events: list[Event]) -> bool:
    """The run ended on a compressed message that refers further back than
    the window the peer agreed to (RFC 7692 7.1.2: `*_max_window_bits`).

    zlib checks a distance against the window plus what the same inflate
    call has produced, so such a message is refused (1007) when its bytes
    come in pieces and may inflate when they come at once.  Either answer
    is safe (the output is bounded by max_size both ways); only a window
    below 15 bits can be breached, as 15 bits is deflate's own limit.
    """
    if setup.deflate is None or not events:
        return False
    peer_bits = (
        setup.deflate.client_max_window_bits
        if setup.server
        else setup.deflate.server_max_window_bits
    )
    last = events[-1]
    return isinstance(last, ConnectionFailed) and breaches_window(peer_bits, last.reason)


def breaches_window(peer_bits: int, reason: str) -> bool:
    """A refusal of a distance past a window the peer agreed to make
    smaller than deflate's own 15 bits (see `past_the_window`)."""
    return peer_bits < 15 and "invalid distance too far back" in reason


def check_engine_events(setup: EngineSetup, events: list[Event]) -> None:
    failed = False
    for event in events:
        if isinstance(event, TextMessage | BytesMessage):
            check(not failed, f"a message after ConnectionFailed: {events!r}"[:500])
            if setup.max_size is not None:
                size = (
                    len(event.data.encode()) if isinstance(event, TextMessage) else len(event.data)
                )
                check(size <= setup.max_size, f"{size}-byte message over max_size {setup.max_size}")
        elif isinstance(event, ConnectionFailed):
            check(not failed, "two ConnectionFailed events")
            check(event.code in (1002, 1006, 1007, 1009), f"ConnectionFailed code {event.code}")
            failed = True


def fuzz_ws_engine(data: bytes) -> None:
    """The frame parser and engine, both roles, with and without deflate.

    Byte 0 picks the set-up (`engine_setup`), byte 1 the piece size; the rest
    is the peer's byte stream.  The stream cut in pieces on the C
    accelerator must give exactly the events of the whole stream on the
    pure-Python paths.
    """
    if len(data) < 2:
        return
    setup = engine_setup(data[0], data[1] % 32)
    stream = data[2:]
    with engine_paths(use_c=True):
        fast = run_engine(setup, stream, setup.piece)
    with engine_paths(use_c=False):
        plain = run_engine(setup, stream, 0)
        if past_the_window(setup, fast.events) or past_the_window(setup, plain.events):
            # The cut decides whether, and at which message, zlib sees the
            # peer's breach of the window it agreed to (see
            # `past_the_window`): compare the C and Python paths on the same
            # cut instead.
            plain = run_engine(setup, stream, setup.piece)
    check_engine_events(setup, fast.events)
    check(
        comparable(fast.events) == comparable(plain.events),
        f"C/split {fast.events!r} != Python {plain.events!r}"[:2000],
    )
    check(fast.state == plain.state, f"state {fast.state} != {plain.state}")
    if setup.server:
        check(fast.sent == plain.sent, "the bytes sent back differ")
    else:  # a client masks with fresh random keys: sizes only
        check([len(b) for b in fast.sent] == [len(b) for b in plain.sent], "sent sizes differ")


# --- opening handshake -------------------------------------------------------------

_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def split_head(text: str) -> tuple[str, list[tuple[bytes, bytes]]]:
    """First line, then `name: value` lines (a line without a colon is a name)."""
    first, _, rest = text.partition("\n")
    headers = []
    for line in rest.split("\n"):
        name, _, value = line.partition(":")
        headers.append((name.encode("latin-1"), value.strip(" \t").encode("latin-1")))
    return first, headers


def fuzz_ws_handshake(data: bytes) -> None:
    """Server `validate_request` and client `validate_response` on any head.

    Input: a first line `METHOD VERSION` (server) or `STATUS` (client, when
    byte 0 is odd), then header lines.
    """
    if not data:
        return
    first, headers = split_head(data[1:].decode("latin-1"))
    if data[0] & 1:
        status = int(first) if first.isascii() and first.isdigit() and len(first) < 5 else 101
        offered = ["chat", "superchat"] if data[0] & 2 else None
        options = DeflateOptions() if data[0] & 4 else None
        try:
            subprotocol, params = validate_response(
                status, headers, _KEY, offered_subprotocols=offered, deflate_options=options
            )
        except InvalidResponse as exc:
            check(exc.status == status, "InvalidResponse does not carry the server's status")
            return
        check(status == 101, f"accepted a {status} response")
        check(subprotocol is None or subprotocol in (offered or []), "a subprotocol not offered")
        check(params is None or options is not None, "deflate accepted without an offer")
        return
    method, _, version = first.partition(" ")
    try:
        handshake = validate_request(method, version, headers)
    except HandshakeError as exc:
        check(exc.status in (400, 426), f"handshake refused with {exc.status}")
        return
    check(method == "GET", f"accepted method {method!r}")
    # What the server builds from an accepted request must be sendable.
    try:
        agreed = negotiate(handshake.extensions, DeflateOptions())
    except HandshakeError as exc:
        check(exc.status == 400, f"extension header refused with {exc.status}")
        agreed = None
    value = agreed[0] if agreed else None
    for name, header in accept_headers(handshake.key, None, value):
        check(b"\r" not in header and b"\n" not in header, f"CR/LF in {name!r}")


# --- permessage-deflate ------------------------------------------------------------


def _options(flags: int) -> DeflateOptions:
    return DeflateOptions(
        server_max_window_bits=_WINDOW_BITS[flags & 3],
        client_max_window_bits=(None, 8, 12, 15)[(flags >> 2) & 3],
        server_no_context_takeover=bool(flags & 0x10),
        client_no_context_takeover=bool(flags & 0x20),
    )


def _inflate(
    codec: MessageDeflate, parts: list[bytes], limit: int | None
) -> bytes | ProtocolError:
    """The message inflated part by part within `limit`, or the refusal."""
    out = b""
    try:
        for part in parts:
            out += codec.decompress(part, None if limit is None else limit - len(out))
        out += codec.finish(None if limit is None else limit - len(out))
    except ProtocolError as exc:
        return exc
    return out


def _inflate_whole(
    codec: MessageDeflate, payload: bytes, limit: int | None
) -> bytes | ProtocolError:
    try:
        return codec.decompress_message(payload, limit)
    except ProtocolError as exc:
        return exc


def _code(outcome: bytes | ProtocolError) -> bytes | int:
    return outcome.code if isinstance(outcome, ProtocolError) else outcome


def fuzz_ws_deflate(data: bytes) -> None:
    """Negotiation (server and client) and bounded inflate.

    Input: byte 0 the local options, byte 1 the piece size and limit, then
    an extension header line, a newline, and a compressed payload.
    """
    if len(data) < 2:
        return
    options = _options(data[0])
    header, _, payload = data[2:].partition(b"\n")
    text = header.decode("latin-1")
    try:
        agreed = negotiate([text], options)
    except HandshakeError as exc:
        check(exc.status == 400, f"offer refused with {exc.status}")
        agreed = None
    if agreed is not None:
        value, params = agreed
        check(parse_extension_list([value])[0][0] == "permessage-deflate", "bad response")
        check(8 <= params.client_max_window_bits <= 15, "client window out of range")
        check(9 <= params.server_max_window_bits <= 15 or params.server_max_window_bits == 8, "")
    try:
        client_params = client_accept(text, options)
    except InvalidResponse:
        client_params = None
    if client_params is not None:
        for bits in (client_params.client_max_window_bits, client_params.server_max_window_bits):
            check(8 <= bits <= 15, f"window bits {bits} accepted")
    params = agreed[1] if agreed is not None else DeflateParams()
    limit = (None, 0, 64, 4096)[data[1] & 3]
    piece = data[1] >> 2
    whole_outcome = _inflate_whole(params.codec(is_server=True), payload, limit)
    split_outcome = _inflate(params.codec(is_server=True), pieces(payload, piece), limit)
    whole, split = _code(whole_outcome), _code(split_outcome)
    # Bad data past the limit: in one piece inflating stops at the limit
    # (1009); in pieces the bad bytes may come first (1007).  Either answer
    # is right for that message (see `comparable`).
    both_data_faults = whole in _DATA_FAULTS and split in _DATA_FAULTS
    # A distance past the client's agreed window is seen in pieces and may
    # not be seen at once (see `past_the_window`): either answer is safe.
    split_saw_breach = isinstance(split_outcome, ProtocolError) and breaches_window(
        params.client_max_window_bits, split_outcome.reason
    )
    check(
        whole == split or both_data_faults or split_saw_breach,
        f"whole {whole!r} != piecewise {split!r}"[:1000],
    )
    if isinstance(whole, bytes):
        check(limit is None or len(whole) <= limit, "inflated past the limit")
        # What inflated within the limit is a well-formed message: our own
        # inflater reads our own deflater's output of it the same.
        sender = MessageDeflate(params, is_server=False)
        check(
            _code(_inflate_whole(params.codec(is_server=True), sender.compress(whole), None))
            == whole,
            "round trip",
        )
    else:
        check(whole in (1007, 1009), f"inflate failed with {whole}")


# --- HTTP request parser -----------------------------------------------------------

_MAX_HEAD = 1024

# The C head scanner under test (`runner.py` swaps in an instrumented
# build); None without the extension.
C_SCAN_HEAD = wire_module.c_scan_head


@contextmanager
def head_scanner(scan: Callable[[bytes, int, int], object]) -> Iterator[None]:
    """Run the wire check with `scan` reading whole heads."""
    saved = wire_module.scan_head
    wire_module.scan_head = scan
    try:
        yield
    finally:
        wire_module.scan_head = saved


def check_head_scanners(request: bytes) -> None:
    """The C scanner reads every head as the Python one does (or neither
    reads it), wherever the head starts and however long it is."""
    if C_SCAN_HEAD is None:
        return
    start = 0
    while (end := request.find(b"\r\n\r\n", start)) >= 0:
        python = wire_module.python_scan_head(request, start, end + 2)
        native = C_SCAN_HEAD(request, start, end + 2)
        check(native == python, f"scan_head: C {native!r} != Python {python!r}"[:2000])
        start = end + 4

Outcome = tuple[object, ...]


def http_outcome(events: list[ParserEvent], trailing: bytes) -> list[Outcome]:
    """Events in a form two parsers can be compared by: body chunks joined
    (their sizes depend on where the bytes were cut), reasons dropped."""
    out: list[Outcome] = []
    for event in events:
        if isinstance(event, RequestStarted):
            head = event.head
            out.append(
                (
                    "request",
                    head.method,
                    head.raw_path,
                    head.query_string,
                    head.http_version,
                    tuple(head.headers),
                    event.keep_alive,
                    event.expect_continue,
                    event.upgrade,
                )
            )
            if event.upgrade:
                out.append(("trailing", trailing))
        elif isinstance(event, BodyChunk):
            if out and out[-1][0] == "body":
                out[-1] = ("body", cast("bytes", out[-1][1]) + event.data)
            else:
                out.append(("body", event.data))
        elif isinstance(event, RequestEnded):
            out.append(("end",))
        elif isinstance(event, ParseFailed):
            out.append(("failed", event.status))
    return out


def run_parser(
    make: Callable[[int], H11Parser | HttptoolsParser], data: bytes, piece: int
) -> list[Outcome]:
    parser = make(_MAX_HEAD)
    events: list[ParserEvent] = []
    chunks = pieces(data, piece)
    later = b""
    for i, chunk in enumerate(chunks):
        events += parser.feed(chunk)
        last = events[-1] if events else None
        if isinstance(last, ParseFailed):
            break  # the protocol stops feeding here
        if isinstance(last, RequestStarted) and last.upgrade:
            # what arrives later goes to the WebSocket connection directly
            later = b"".join(chunks[i + 1 :])
            break
    trailing = parser.trailing_data() + later
    parser.close()
    return after_close_dropped(http_outcome(events, trailing))


def after_close_dropped(outcome: list[Outcome]) -> list[Outcome]:
    """The outcome up to the end of the first request that does not keep
    the connection: the protocol reads nothing after it as a request (where
    llhttp refuses such bytes and h11 parses on)."""
    closing = False
    for i, item in enumerate(outcome):
        if item[0] == "request":
            closing = not item[6]
        elif item[0] == "end" and closing:
            return outcome[: i + 1]
    return outcome


def check_http_grammar(name: str, outcome: list[Outcome]) -> None:
    """request (body)* end ... ; a failure or an upgrade is the last thing."""
    in_request = False
    for i, item in enumerate(outcome):
        kind = item[0]
        if kind == "failed":
            check(i == len(outcome) - 1, f"{name}: events after a failure: {outcome}")
            check(item[1] in (400, 414, 431, 501, 505), f"{name}: status {item[1]}")
        elif kind == "request":
            check(not in_request, f"{name}: request inside a request: {outcome}")
            in_request = True
        elif kind == "body":
            check(in_request, f"{name}: body outside a request")
        elif kind == "end":
            check(in_request, f"{name}: end outside a request")
            in_request = False


@functools.cache
def llhttp_knows(method: str) -> bool:
    """llhttp parses only the methods it has a name for (RFC 9110's, WebDAV,
    ...) and refuses any other token with 400; h11 passes any token to the
    app.  That difference stays (docs/SECURITY.md): a method is not framing,
    and refusing unknown methods under h11 would break apps that use them."""
    parser = HttptoolsParser(_MAX_HEAD)
    events = parser.feed(method.encode("latin-1") + b" / HTTP/1.1\r\nHost: a\r\n\r\n")
    return not any(isinstance(e, ParseFailed) for e in events)


def fuzz_http_parser(data: bytes) -> None:
    """h11 and httptools behind the parser face.  Byte 0: the piece size.

    Each parser cut in pieces gives what it gives on the whole input, and
    with the wire check's C head scanner what it gives with the Python one;
    it obeys the event grammar and the head limit; and both parsers give the same
    requests: a request one of them passes to the app is one the other
    passes identically, or refuses."""
    if not data:
        return
    piece = data[0] % 64
    request = data[1:]
    check_head_scanners(request)
    results = {}
    for name, make in (("h11", H11Parser), ("httptools", HttptoolsParser)):
        with head_scanner(C_SCAN_HEAD or wire_module.python_scan_head):
            whole = run_parser(make, request, 0)
            split = run_parser(make, request, piece)
        check_http_grammar(name, whole)
        check(whole == split, f"{name}: whole {whole} != split {split}"[:2000])
        if C_SCAN_HEAD is not None:  # (without it both runs above used the Python one)
            with head_scanner(wire_module.python_scan_head):
                python = run_parser(make, request, 0)
            check(whole == python, f"{name}: C scanner {whole} != Python {python}"[:2000])
        results[name] = whole
    h11_out, llhttp_out = results["h11"], results["httptools"]
    accepted_h11 = [o for o in h11_out if o[0] != "failed"]
    accepted_llhttp = [o for o in llhttp_out if o[0] != "failed"]
    n = min(len(accepted_h11), len(accepted_llhttp))
    check(
        accepted_h11[:n] == accepted_llhttp[:n],
        f"parsers disagree: h11 {h11_out} httptools {llhttp_out}"[:2000],
    )
    both_failed = (
        h11_out[-1:] and llhttp_out[-1:] and h11_out[-1][0] == llhttp_out[-1][0] == "failed"
    )
    requests_h11 = [o for o in accepted_h11 if o[0] == "request"]
    requests_llhttp = [o for o in accepted_llhttp if o[0] == "request"]
    if len(requests_h11) > len(requests_llhttp) and not llhttp_knows(
        str(requests_h11[len(requests_llhttp)][1])
    ):
        return  # the one difference we keep: see llhttp_knows
    if not both_failed:
        check(
            len(accepted_h11) == len(accepted_llhttp),
            f"one parser refused what the other passed: h11 {h11_out} httptools {llhttp_out}"[
                :2000
            ],
        )


# --- URI parser ---------------------------------------------------------------------


def _printable_ascii(text: str) -> bool:
    return text.isascii() and all(0x21 <= ord(c) < 0x7F for c in text)


def fuzz_uri(data: bytes) -> None:
    """`parse_uri` raises only InvalidURI, and what it accepts can go on the
    wire as it is: an ASCII request target and Host header, a real port."""
    uri = data.decode("utf-8", "replace")
    try:
        parsed = parse_uri(uri)
    except InvalidURI:
        return
    check(1 <= parsed.port <= 65535, f"port {parsed.port}")
    check(parsed.resource_name.startswith("/"), f"resource {parsed.resource_name!r}")
    check(_printable_ascii(parsed.resource_name), f"resource {parsed.resource_name!r}")
    check(bool(parsed.host), "empty host")
    host_header = parsed.host_header
    check(_printable_ascii(host_header), f"Host header {host_header!r}")


# --- the registry ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    max_len: int  # the longest input the fuzzer tries


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("ws_engine", fuzz_ws_engine, 4096),
        Target("ws_handshake", fuzz_ws_handshake, 2048),
        Target("ws_deflate", fuzz_ws_deflate, 4096),
        Target("http_parser", fuzz_http_parser, 4096),
        Target("uri", fuzz_uri, 512),
    )
}
