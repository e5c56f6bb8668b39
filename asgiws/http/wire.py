"""The request stream checked against RFC 9112's grammar before any parser.

h11 and llhttp (httptools) are each lenient somewhere, and not in the same
places: h11 takes a bare LF as a line end, obs-fold, control characters in
field values, duplicate Content-Length headers and any chunk size; llhttp
takes several spaces between request-line words, leading empty lines and
an HTTP/0.9 request line.  Where two parsers in a chain disagree on where
a request ends, requests can be smuggled past a proxy; and the server's
answer should not depend on `--http`.  `WireCheck` therefore reads every
byte of the stream first, the same way for both parsers: the request head,
the body framing (Content-Length or chunked), chunk lines, trailers.  What
breaks the grammar is refused with 400 (431 for a head over the limit, 501
for a transfer coding other than chunked) at the first byte that shows it,
and the parser only ever sees the bytes before that point.

It is a checker, not a second parser of bodies: it keeps only the line it
is reading (bounded by the head limit) and counts body bytes without
keeping them.  The head it reads anyway, so each complete head leaves a
`CheckedHead` (request line, header fields with names lower-cased and
values trimmed, what framing and policy need from them) in `heads`, and
the parser behind takes its head from there instead of reading the fields
a second time (`parser.start_request`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from asgiws.websocket.headers import split_list
from asgiws.websocket.mask import extensions_enabled

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9112 3: request-line = method SP request-target SP HTTP-version, one SP
# each; the target is visible ASCII (RFC 3986 characters, checked loosely).
_REQUEST_LINE_PATTERN = rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])"
_REQUEST_LINE = re.compile(_REQUEST_LINE_PATTERN)
# RFC 9112 5: field-line = field-name ":" OWS field-value OWS, with no
# whitespace before the colon (5.1: "MUST ... 400"); RFC 9110 5.5: a value is
# VCHAR, SP, HTAB and obs-text: no other control character, no DEL.
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)")
# A whole head in one match (request line, then field lines, each ending in
# CRLF; no bare CR or LF can match, nor obs-fold): the common case, checked
# in one C call instead of a few per line.
_CLEAN_HEAD = re.compile(
    _REQUEST_LINE_PATTERN + rb"\r\n(?:" + _TOKEN + rb":[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*"
)
# RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF; chunk-size = 1*HEXDIG;
# chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ),
# ext-val = token / quoted-string; without the optional whitespace (BWS),
# which llhttp refuses.  Sizes up to 16 hex digits (64 bits),
# what llhttp accepts.
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_EXT = rb"(?:;" + _TOKEN + rb"(?:=(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})" + _CHUNK_EXT)
# RFC 3986 3.2: authority = [ userinfo "@" ] host [ ":" port ], host a
# reg-name, an IPv4 address or an IP literal in brackets.
_REG_NAME = rb"[A-Za-z0-9\-._~!$&'()*+,;=%]*"
_AUTHORITY = (
    rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=%:]*@)?(?:\[[0-9A-Fa-f:.]+\]|" + _REG_NAME + rb")(?::[0-9]*)?"
)
# The scheme in letters only: llhttp reads no other (RFC 3986 also allows
# digits, "+", "-" and "." after the first letter; http and https need none).
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z]+://" + _AUTHORITY + rb"(?:[/?]|$)")
_CONTENT_LENGTH = re.compile(rb"[0-9]{1,18}")

_FRAMING_FIELDS = (b"transfer-encoding", b"content-length")
# Methods both parsers know (llhttp refuses methods it does not know; h11
# takes any token): a head with one of these may skip the parser behind
# (`WireCheck.whole`).
_KNOWN_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"))

# Header names and values many requests carry, one shared bytes object each,
# which every head's fields use instead of copies of their own: a WebSocket's
# scope keeps the request's headers for the connection's life, and an idle
# connection should not hold its own b"upgrade" (~40 bytes per field).  The
# C scanner returns these objects without allocating (`_speedups.share`).
SHARED_FIELD_BYTES = {
    b: b
    for b in (
        b"host", b"connection", b"upgrade", b"origin", b"user-agent", b"pragma",
        b"cache-control", b"accept-encoding", b"accept-language", b"cookie",
        b"sec-websocket-version", b"sec-websocket-key", b"sec-websocket-extensions",
        b"sec-websocket-protocol", b"authorization", b"x-forwarded-for",
        b"x-forwarded-proto", b"forwarded", b"x-real-ip", b"content-type",
        b"content-length", b"accept", b"websocket", b"Upgrade", b"13", b"no-cache",
        b"gzip, deflate, br", b"gzip, deflate, br, zstd", b"gzip, deflate", b"*/*",
        b"permessage-deflate; client_max_window_bits", b"permessage-deflate",
    )
}  # fmt: skip

# What the checker expects next.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _PASS = range(7)
_MAX_CHUNK_LINE = 4096


@dataclass(frozen=True, slots=True)
class WireError:
    """The stream breaks the grammar at this point: answer `status`, close."""

    status: int
    reason: str


def _bad(reason: str) -> WireError:
    return WireError(400, reason)


class CheckedHead:
    """One complete request head as the checker read it, in one pass: the
    request line, the fields (names lower-cased, values without the optional
    whitespace around them, Transfer-Encoding codings lower-cased, as h11
    gives them), and what framing and request policy need from the fields."""

    __slots__ = (
        "connection",
        "expect_continue",
        "headers",
        "hosts",
        "http_version",
        "method",
        "size",
        "target",
        "upgrade",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
        size: int,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        # " ", " HTTP/1.1", CRLF and the final CRLF, plus ": " and CRLF per
        # field (single spaces assumed): the size the head limit applies to.
        self.size = size
        self.hosts = 0
        self.connection: list[str] = []  # Connection options, lower-cased
        self.upgrade: list[str] = []  # Upgrade protocols, lower-cased
        self.expect_continue = False


_new_checked_head = object.__new__

Field = tuple[bytes, bytes]

ScannedHead = tuple[bytes, bytes, bytes, bytes, list[Field], int, list[Field]]
"""A clean head's method, target, major and minor version digits, its
fields (names lower-cased, values trimmed of spaces and tabs), its size as
the head limit counts it (`head_size`) and the fields among them whose names
are in `FRAMING_POLICY_FIELDS` (the same pairs, in order)."""

FRAMING_POLICY_FIELDS = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"expect")
)
"""The fields `WireCheck._framing` reads: the body's framing and what request
policy needs (Host, Connection, Upgrade, Expect).  The scanners set them
apart as they read, so that the head's other fields are looked at once."""


def head_size(method: bytes, target: bytes, fields: list[Field]) -> int:
    """The size the head limit applies to: " ", " HTTP/1.1", CRLF and the
    final CRLF, plus ": " and CRLF per field (single spaces assumed)."""
    return len(method) + len(target) + 14 + sum(len(n) + len(v) + 4 for n, v in fields)


def python_scan_head(buf: bytes, pos: int, end: int) -> ScannedHead | None:
    """`buf[pos:end]`, a request head up to the CRLF of its last line, read
    in one go when all of it keeps to `_CLEAN_HEAD`; None sends it line by
    line.  The C twin (`_speedups.scan_head`) returns the same."""
    match = _CLEAN_HEAD.fullmatch(buf, pos, end)
    if match is None:
        return None
    method, target, major, minor = match.group(1, 2, 3, 4)
    fields = []
    framing = []
    size = len(method) + len(target) + 14  # (head_size, written out in the loop)
    shared = SHARED_FIELD_BYTES.get
    # Matched: each line is `token ":" value`, so the first colon ends the
    # name.  (Splitting is cheaper than a findall that captures the same pairs.)
    first_field = match.end(4) + 2
    if first_field < end - 2:  # (a head may have no fields)
        for line in buf[first_field : end - 2].split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.lower()
            value = value.strip(b" \t")
            pair = (shared(name, name), shared(value, value))
            fields.append(pair)
            size += len(name) + len(value) + 4
            if name in FRAMING_POLICY_FIELDS:
                framing.append(pair)
    return method, target, major, minor, fields, size, framing


def _c_scan_head() -> Callable[[bytes, int, int], ScannedHead | None] | None:
    if not extensions_enabled():
        return None
    try:
        from asgiws.http import _speedups
    except ImportError:  # not built: the Python scanner reads the same heads
        return None
    if not hasattr(_speedups, "share"):
        return None  # an older build: its heads lack the size and the framing fields
    _speedups.share(tuple(SHARED_FIELD_BYTES))
    return _speedups.scan_head


c_scan_head = _c_scan_head()
"""The C scanner; None without the extension or with ASGIWS_NO_EXTENSIONS=1."""

scan_head: Callable[[bytes, int, int], ScannedHead | None] = c_scan_head or python_scan_head
"""What `WireCheck.check` reads whole heads with (tests swap it)."""


class WireCheck:
    """Feed it every byte the client sends; `check(data)` returns what the
    parser may read and, when the stream breaks the grammar, why the rest
    is refused."""

    __slots__ = (
        "_carry",
        "_fields",
        "_framing_fields",
        "_lines",
        "_lines_size",
        "_max_head",
        "_remaining",
        "_request_line",
        "_state",
        "heads",
        "whole",
    )

    def __init__(self, max_head: int) -> None:
        self._max_head = max_head
        self._state = _HEAD
        self._carry = b""  # the start of a line not complete yet, held back
        self._lines = 0  # the head's (or trailers') complete lines so far
        self._lines_size = 0  # their bytes, CRLFs included
        self._remaining = 0  # body or chunk bytes still to come
        self._request_line: tuple[bytes, bytes, str] | None = None
        self._fields: list[tuple[bytes, bytes]] = []  # the head's, as they came
        # The last head had a Content-Length or Transfer-Encoding field (even
        # an empty one, which each parser refuses in its own words).
        self._framing_fields = False
        self.heads: deque[CheckedHead] = deque()
        """Complete heads in the bytes handed on, oldest first: the parser
        takes one for each request head it completes."""
        self.whole: CheckedHead | None = None
        """Set by `check()` (not put in `heads`) when the bytes it returned
        are one whole HTTP/1.1 keep-alive request with no Content-Length or
        Transfer-Encoding field, one Host and a method both parsers know,
        from a message boundary on, or such a WebSocket upgrade head and the
        bytes behind it: every parser reads such a request the way the check
        did (tests/security/test_smuggling.py), so the parser behind need
        not read it again.  The reader clears it."""

    def check(self, data: bytes) -> tuple[bytes, WireError | None]:
        """The bytes the parser may have now, and the error that stops the
        stream after them (None: go on).

        A line is handed on only once it is complete and checked, so that no
        parser meets a bad line half read and answers it its own way; the
        piece of a line still incomplete is held back until its CRLF comes.
        """
        buf = self._carry + data if self._carry else data
        self._carry = b""
        pos = 0
        end = len(buf)
        while pos < end:
            state = self._state
            if state == _PASS:
                return buf, None
            if state == _HEAD and not self._lines:
                # A head that is all here and keeps to the grammar, within
                # the limit (its lines and final CRLF at most max_head + 2
                # bytes, as the line by line check counts): read in one go.
                # Anything else goes line by line, which finds the fault at
                # the earliest byte.
                head_end = buf.find(b"\r\n\r\n", pos)
                if 0 <= head_end <= pos + self._max_head - 2:
                    scanned = scan_head(buf, pos, head_end + 2)
                    if scanned is not None:
                        method, target, major, minor, fields, size, framing = scanned
                        # HTTP/1.1 in origin form, most requests, needs no
                        # further look at the request line.
                        if minor != b"1" or major != b"1" or target[:1] != b"/":
                            error = _request_line_error(method, target, major, minor)
                            if error is not None:
                                return buf[:pos], error
                        self._request_line = (method, target, "1.1" if minor == b"1" else "1.0")
                        error = self._framing(fields, size, framing)
                        if error is not None:
                            return buf[: head_end + 2], error
                        if (
                            not pos  # (the parser behind is at a message boundary)
                            and minor == b"1"
                            and method in _KNOWN_METHODS
                            # (A framing field, even an empty or zero one, is
                            # for the parser to judge: h11 refuses an empty
                            # Transfer-Encoding with 501, for one.)
                            and not self._framing_fields
                            # (Behind an upgrade head both parsers leave
                            # every byte, a body too, to the other protocol.)
                            and (
                                self._state == _PASS
                                or (self._state == _HEAD and head_end + 4 == end)
                            )
                        ):
                            head = self.heads[-1]
                            # (Host missing or repeated: each parser words
                            # its own refusal, so it reads that head.)
                            if head.hosts == 1 and "close" not in head.connection:
                                self.heads.pop()
                                self.whole = head
                                return buf, None
                        pos = head_end + 4
                        continue
            if state in (_BODY, _CHUNK_DATA):
                take = min(self._remaining, end - pos)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _HEAD if state == _BODY else _CHUNK_END
                continue
            # A line, up to CRLF.  A bare LF or CR anywhere in it is refused
            # (RFC 9112 2.2: a recipient "MAY recognize a single LF as a line
            # terminator"; we do not, so that no parser behind or in front of
            # us can cut the lines differently).
            # The fault at the earliest byte wins, so that the answer is the
            # same however the stream was cut: a bare CR (known once the byte
            # after it is there), a bare LF, or the byte past the size limit.
            newline = buf.find(b"\n", pos)
            stop = end if newline < 0 else newline + 1
            limit = self._max_head if state in (_HEAD, _TRAILERS) else _MAX_CHUNK_LINE
            faults: list[tuple[int, WireError]] = []
            over = pos + limit + 2 - self._lines_size  # the first byte over the limit
            if over < stop:
                faults.append((over, self._too_long(state)))
            cr = buf.find(b"\r", pos, stop - 1)
            if cr >= 0 and not (newline >= 0 and cr == newline - 1):
                faults.append((cr, _bad("bare CR in a line")))
            if newline >= 0 and (newline == pos or buf[newline - 1] != 0x0D):
                faults.append((newline, _bad("bare LF: lines end with CRLF")))
            if faults:
                return buf[:pos], min(faults, key=lambda fault: fault[0])[1]
            if newline < 0:
                self._carry = buf[pos:]
                return buf[:pos], None
            text = buf[pos : newline - 1]
            error = self._line_done(text)
            if error is not None:
                return buf[:pos], error
            pos = stop
        return buf, None

    def _too_long(self, state: int) -> WireError:
        if state == _HEAD and not self._lines:
            # RFC 9112 3: "A server that receives a request-target longer than
            # any URI it wishes to parse MUST respond with a 414 (URI Too Long)".
            return WireError(414, "request line too long")
        if state in (_HEAD, _TRAILERS):
            return WireError(431, "request header fields too large")
        return _bad("chunk line too long")

    def _line_done(self, text: bytes) -> WireError | None:
        state = self._state
        if state == _CHUNK_END:
            if text:
                return _bad("chunk data longer than its size")
            self._state = _CHUNK_SIZE
            return None
        if state == _CHUNK_SIZE:
            match = _CHUNK_LINE.fullmatch(text)
            if match is None:
                return _bad("invalid chunk size line")
            size = int(match.group(1), 16)
            self._remaining = size
            self._state = _CHUNK_DATA if size else _TRAILERS
            return None
        if text:
            self._lines_size += len(text) + 2
            if state == _HEAD and not self._lines:
                self._lines = 1
                return self._request_line_done(text)
            # RFC 9112 5.2: "A server that receives an obs-fold in a request
            # message ... MUST either reject the message by sending a 400 (Bad
            # Request) ... or replace each received obs-fold with one or more SP".
            if text[0] in b" \t":
                return _bad("obs-fold (a header line starting with whitespace)")
            match = _FIELD_LINE.fullmatch(text)
            if match is None:
                return _bad("invalid header line")
            name = match[1].lower()
            if state == _TRAILERS:
                if name in _FRAMING_FIELDS:
                    # RFC 9110 6.5.1: framing fields cannot be trailers;
                    # llhttp refuses them, so both parsers do.
                    return _bad("a framing field in the trailers")
            else:
                # RFC 9112 5: a field value has no leading or trailing
                # whitespace (the pattern skips what leads).
                value = match[2].rstrip(b" \t")
                shared = SHARED_FIELD_BYTES.get
                self._fields.append((shared(name, name), shared(value, value)))
            self._lines += 1
            return None
        # The empty line: the head (or the trailers) ends.
        lines, self._lines = self._lines, 0
        self._lines_size = 0
        if state == _TRAILERS:
            self._state = _HEAD
            return None
        if not lines:
            # RFC 9112 2.2 allows ignoring empty lines before a request; h11
            # refuses them, so both parsers do.
            return _bad("empty line before the request line")
        fields, self._fields = self._fields, []
        assert self._request_line is not None
        method, target, _ = self._request_line
        framing = [pair for pair in fields if pair[0] in FRAMING_POLICY_FIELDS]
        return self._framing(fields, head_size(method, target, fields), framing)

    def _request_line_done(self, line: bytes) -> WireError | None:
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            return _bad("invalid request line")
        method, target, major, minor = match.groups()
        error = _request_line_error(method, target, major, minor)
        if error is None:
            self._request_line = (method, target, "1.1" if minor == b"1" else "1.0")
        return error

    def _framing(self, fields: list[Field], size: int, framing: list[Field]) -> WireError | None:
        """RFC 9112 6.3: how the body of the request whose head has `fields`
        ends; and the head, for the parser (`heads`).  `size`: the head's
        (`head_size`); `framing`: its fields named in FRAMING_POLICY_FIELDS."""
        assert self._request_line is not None
        method, target, version = self._request_line
        lengths: list[bytes] = []
        codings: list[str] = []
        hosts = 0
        framing_fields = False
        # CheckedHead's __init__ written out (one Python call per request fewer).
        head = _new_checked_head(CheckedHead)
        head.method = method
        head.target = target
        head.http_version = version
        head.headers = fields
        head.connection = connection = []
        head.upgrade = upgrade = []
        head.expect_continue = False
        for name, value in framing:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                lengths.append(value)
                framing_fields = True
            elif name == b"transfer-encoding":
                codings += lower_tokens(value)
                framing_fields = True
            elif name == b"connection":
                text = value.decode("latin-1").lower()
                # (lower_tokens written out for the single token most send.)
                if "," in text:
                    connection += split_list(text)
                elif text:
                    connection.append(text)
            elif name == b"upgrade":
                text = value.decode("latin-1").lower()
                if "," in text:
                    upgrade += split_list(text)
                elif text:
                    upgrade.append(text)
            elif name == b"expect" and value.lower() == b"100-continue":
                head.expect_continue = version == "1.1"
        head.size = size
        head.hosts = hosts
        self._framing_fields = framing_fields
        if codings:
            # Transfer-Encoding values lower-cased, as h11 gives them.
            fields[:] = [
                (name, value.lower() if name == b"transfer-encoding" else value)
                for name, value in fields
            ]
            # 6.1: "A server MAY reject a request that contains both
            # Content-Length and Transfer-Encoding ...", and "A server ... that
            # receives an HTTP/1.0 message containing a Transfer-Encoding header
            # field MUST treat the message as if the framing is faulty".
            if lengths:
                return _bad("both Content-Length and Transfer-Encoding")
            if version == "1.0":
                return _bad("Transfer-Encoding in an HTTP/1.0 request")
            if codings != ["chunked"]:
                return WireError(501, "Only Transfer-Encoding: chunked is supported")
            self._state = _CHUNK_SIZE
        elif lengths:
            # RFC 9110 8.6: a list of one repeated value MAY be accepted; we
            # take one Content-Length with one value only, as llhttp does.
            if len(lengths) > 1:
                return _bad("more than one Content-Length")
            if _CONTENT_LENGTH.fullmatch(lengths[0]) is None:
                return _bad("invalid Content-Length")
            self._remaining = int(lengths[0])
            self._state = _BODY if self._remaining else _HEAD
        else:
            self._state = _HEAD
        if "upgrade" in connection and "websocket" in upgrade:
            self._state = _PASS  # WebSocket frames follow: not ours to check
        self.heads.append(head)
        return None


def lower_tokens(value: bytes) -> list[str]:
    """Lower-cased elements of one list-valued header (tokens compare
    case-insensitively: Connection, Transfer-Encoding, Upgrade)."""
    return split_list(value.decode("latin-1").lower())


def _request_line_error(
    method: bytes, target: bytes, major: bytes, minor: bytes
) -> WireError | None:
    if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
        # RFC 9110 15.6.6: 505 HTTP Version Not Supported.
        return WireError(505, f"HTTP/{major.decode()}.{minor.decode()} is not supported")
    # RFC 9112 3.2: origin-form, absolute-form, authority-form (CONNECT only)
    # and asterisk-form (OPTIONS only).
    if target[:1] == b"/" or _ABSOLUTE_FORM.match(target):
        return None
    if target == b"*":
        return None if method == b"OPTIONS" else _bad("'*' is only a target for OPTIONS")
    if method == b"CONNECT":
        return None
    return _bad("invalid request target")
