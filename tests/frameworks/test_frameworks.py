"""Starlette, FastAPI, Django + Channels, Litestar and Quart apps served by the
asgiws CLI, each driven through the same surface (see __init__.py) by the
`websockets` client and httpx: HTTP routes and health checks (with lifespan
state), text, binary, fragmented and compressed messages, subprotocol and
accept headers, close codes and reasons both ways, and each framework's own
way of refusing a handshake."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.conftest import ServerProcess
from tests.frameworks.common import FRAMEWORK_HEADER, SUBPROTOCOL

TIMEOUT = 10.0


@dataclass(frozen=True)
class Framework:
    name: str
    app: str
    # What GET /health reports beside "status": lifespan state, or the user
    # Django's auth middleware resolved.
    health: dict[str, str]
    # Quart cancels the handler when the client closes, without the code.
    reports_client_close: bool = True
    # Channels' router has no lifespan app: "auto" lets the server go on
    # without one; the others must start through lifespan ("on").
    lifespan: str = "on"
    # Quart 0.22 reads `event.get("bytes") or event["text"]`, so an empty
    # binary message (ASGI: {"bytes": b""}, no "text" key, as uvicorn sends
    # it too) fails inside Quart with KeyError; a Quart bug, not the server's.
    receives_empty_binary: bool = True


FRAMEWORKS = [
    Framework("starlette", "tests.frameworks.starlette_app:app", {"state": "lifespan"}),
    Framework("fastapi", "tests.frameworks.fastapi_app:app", {"state": "lifespan"}),
    Framework(
        "django-channels",
        "tests.frameworks.django_site.asgi:application",
        {"user": "AnonymousUser"},
        lifespan="auto",
    ),
    Framework("litestar", "tests.frameworks.litestar_app:app", {"state": "lifespan"}),
    Framework(
        "quart",
        "tests.frameworks.quart_app:app",
        {"state": "lifespan"},
        reports_client_close=False,
        receives_empty_binary=False,
    ),
]


@dataclass(frozen=True)
class Served:
    framework: Framework
    server: ServerProcess

    @property
    def ws(self) -> str:
        return f"{self.server.ws_url}/ws"


@pytest.fixture(scope="module", params=FRAMEWORKS, ids=[f.name for f in FRAMEWORKS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """One asgiws CLI per framework for the whole module (the apps keep no
    state between tests except the last close record, read right after it)."""
    framework: Framework = request.param
    with ServerProcess(framework.app, ("--lifespan", framework.lifespan), None) as server:
        server.wait_ready()
        yield Served(framework, server)


async def test_http_routes_and_health(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.server.url, timeout=TIMEOUT) as client:
        home = await client.get("/")
        health = await client.get("/health")
    assert (home.status_code, home.text) == (200, f"{served.framework.name} home")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", **served.framework.health}


async def test_text(served: Served) -> None:
    async with connect(served.ws) as ws:
        for text in ["hello", "", "héllo wörld 😀" * 1000]:
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == text


async def test_binary(served: Served) -> None:
    messages = [b"\x00\x01\xff", b"", bytes(range(256)) * 4096]
    if not served.framework.receives_empty_binary:
        messages.remove(b"")
    async with connect(served.ws, max_size=None) as ws:
        for data in messages:
            await ws.send(data)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == data


async def test_fragments(served: Served) -> None:
    """The server joins the frames; the framework sees one message."""
    async with connect(served.ws) as ws:
        await ws.send(iter(["frag", "mént", "s 😀"]))
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "fragménts 😀"
        await ws.send(iter([b"ab", b"", b"cd"]))
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"abcd"


async def test_deflate(served: Served) -> None:
    async with connect(served.ws, compression="deflate") as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        text = "compress me " * 10_000
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == text


async def test_subprotocol_and_accept_headers(served: Served) -> None:
    async with connect(served.ws, subprotocols=[SUBPROTOCOL, "v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == SUBPROTOCOL
        assert ws.response is not None
        assert ws.response.headers[FRAMEWORK_HEADER] == served.framework.name
    async with connect(served.ws, subprotocols=["v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol is None


async def test_close_code_and_reason(served: Served) -> None:
    async with connect(served.ws) as ws:
        await ws.send("close 4321 bye now ✓")
        with pytest.raises(websockets.ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert (ws.close_code, ws.close_reason) == (4321, "bye now ✓")

    async with connect(served.ws) as ws:
        await ws.close(4002, "client leaving")
    # The server answers with the client's code (RFC 6455 5.5.1).
    assert ws.close_code == 4002
    if served.framework.reports_client_close:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            record = await client.get(f"{served.server.url}/last-disconnect")
        assert record.json() == {"code": 4002, "reason": "client leaving"}


# status, body (None: any) of each framework's refusal of WS /ws/denied.
DENIALS = {
    # send_denial_response: any HTTP response.
    "starlette": (401, b"members only"),
    # WebSocketException from the dependency: a close before accept.
    "fastapi": (403, None),
    # close() in connect() for an anonymous user.
    "django-channels": (403, None),
    # A guard's NotAuthorizedException before accept.
    "litestar": (403, None),
    # abort(401): a response through websocket.http.response.
    "quart": (401, None),
}


async def test_denial_response(served: Served) -> None:
    status, body = DENIALS[served.framework.name]
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(f"{served.ws}/denied"):
            pass
    response = refused.value.response
    assert response.status_code == status
    if body is not None:
        assert response.body == body
    served.server.wait_for_log(rf'"WebSocket /ws/denied" {status}')


async def test_fastapi_dependency_admits_a_member() -> None:
    """The same FastAPI route with the token its dependency wants."""
    framework = FRAMEWORKS[1]
    with ServerProcess(framework.app, (), None) as server:
        server.wait_ready()
        async with connect(f"{server.ws_url}/ws/denied?token=let-me-in") as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello member"
            await ws.send("echo")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "echo"
