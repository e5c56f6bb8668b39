"""Drives `asgiws.connect()` through the cases of an Autobahn fuzzing server.

The fuzzing server (`kosoku -m fuzzingserver`) speaks the Autobahn protocol:
`/getCaseCount` sends the number of cases as one text message,
`/runCase?case=N&agent=A` runs case N (1-based, in suite order) on that
connection, and `/updateReports?agent=A` ends the run and writes the report.

The client echoes every message back until the case closes the connection.
For the 13.x cases the suite expects particular permessage-deflate offers
(its `cases` package holds them as `CLIENT_OFFERS`); `deflate_keywords`
turns such an offer into `connect()` keywords, so the client offers exactly
what the case tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asgiws
from tests.autobahn.report import run_in_kosoku_subprocess

# 9.x sends messages of up to 16 MiB.
MAX_SIZE = 16 * 2**20
CLIENT_KEYWORDS: dict[str, Any] = {
    # The suite's server starts its closing handshake when it sees any ping, so
    # the client sends no keepalive pings; every case has its own deadline.
    "ping_interval": None,
    "max_size": MAX_SIZE,
    # zlib level 1 instead of 6: 12.x/13.x have the client compress 1,000
    # messages of up to 128 KiB per case, and at level 6 that alone took most
    # of a 9-minute run (12.2.15, a bitmap: 21 ms per message).  The level
    # changes how well the client compresses, not what the protocol checks.
    "ws_deflate_level": 1,
}
# Longest case (12.x/13.x at 128 KiB, 1,000 messages) takes seconds; the
# suite's own deadline for them is 480 s.
CASE_TIMEOUT = 120.0


@dataclass(frozen=True)
class DeflateOffer:
    """One permessage-deflate offer, with Autobahn's field meanings."""

    # The client offers client_no_context_takeover / client_max_window_bits.
    accept_no_context_takeover: bool
    accept_max_window_bits: bool
    # The client asks for server_no_context_takeover / server_max_window_bits=N (0: not asked).
    request_no_context_takeover: bool
    request_max_window_bits: int


def case_offers() -> dict[str, list[DeflateOffer]]:
    """Case id -> the deflate offers the case expects, for every case that has some.

    Only 13.x: 12.x expects the default offer, and the client's own default
    is what those cases should exercise.
    """
    code = (
        "import json\n"
        "from kosoku.cases import CASES\n"
        "print(json.dumps({cid: [[o.acceptNoContextTakeover, o.acceptMaxWindowBits,\n"
        "    o.requestNoContextTakeover, o.requestMaxWindowBits] for o in cls.CLIENT_OFFERS]\n"
        "    for cid, cls in CASES.items() if cid.startswith('13.')}))\n"
    )
    raw: dict[str, list[list[Any]]] = json.loads(run_in_kosoku_subprocess(code))
    return {case_id: [DeflateOffer(*fields) for fields in raw[case_id]] for case_id in raw}


def deflate_keywords(offers: Sequence[DeflateOffer]) -> dict[str, Any]:
    """`connect()` keywords that make the client offer `offers[0]`.

    The client sends one offer; where a case lists several (13.7), the
    first is the one the case's server accepts first, so the case runs the
    same.  ValueError for an offer the client cannot express.
    """
    offer = offers[0]
    if not offer.accept_max_window_bits:
        # RFC 7692 7.1.2.2: the client always says it supports client_max_window_bits.
        raise ValueError(f"the client always offers client_max_window_bits: {offer}")
    return {
        "compression": "deflate",
        "ws_deflate_client_no_context_takeover": offer.accept_no_context_takeover,
        # No value: the server may pick the client's window (7.1.2.2).
        "ws_deflate_client_max_window_bits": None,
        "ws_deflate_server_no_context_takeover": offer.request_no_context_takeover,
        # Not asked for means the full window, which the client does not mention.
        "ws_deflate_server_max_window_bits": offer.request_max_window_bits or 15,
    }


async def read_case_count(base_url: str) -> int:
    async with asgiws.connect(f"{base_url}/getCaseCount", **CLIENT_KEYWORDS) as ws:
        count = await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
    return int(count)


async def echo_until_closed(ws: asgiws.WebSocketConnection) -> None:
    """Send back every text and binary message as it came; return at the close."""
    try:
        async for message in ws:
            await ws.send(message)
    except asgiws.ConnectionClosed:
        pass  # a case that fails the connection on purpose ends here


async def run_case(base_url: str, number: int, agent: str, keywords: Mapping[str, Any]) -> None:
    url = f"{base_url}/runCase?case={number}&agent={quote(agent)}"
    try:
        async with asgiws.connect(url, **CLIENT_KEYWORDS, **keywords) as ws:
            await asyncio.wait_for(echo_until_closed(ws), CASE_TIMEOUT)
    except asgiws.ConnectionClosed:
        pass  # closed before the `async with` body ran, or while closing at its exit


async def run_cases(
    base_url: str,
    agent: str,
    case_ids: Sequence[str],
    offers: Mapping[str, Sequence[DeflateOffer]],
    parallelism: int,
) -> None:
    """Run every case (case N is `case_ids[N - 1]`), `parallelism` at a time,
    then ask the fuzzing server to write its report."""
    queue = list(enumerate(case_ids, start=1))
    queue.reverse()

    async def worker() -> None:
        while queue:
            number, case_id = queue.pop()
            keywords = deflate_keywords(offers[case_id]) if case_id in offers else {}
            await run_case(base_url, number, agent, keywords)

    await asyncio.gather(*(worker() for _ in range(parallelism)))
    async with asgiws.connect(
        f"{base_url}/updateReports?agent={quote(agent)}", **CLIENT_KEYWORDS
    ) as ws:
        await asyncio.wait_for(ws.wait_closed(), CASE_TIMEOUT)
