"""The `websockets` and `aiohttp` clients against the asgiws CLI: the
1,000-message mix echoed byte-identically with and without
permessage-deflate, fragments (websockets), the close code and reason both
ways, a subprotocol with an accept header, and a denial response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest
import websockets
from websockets.asyncio.client import connect as websockets_connect

from asgiws.websocket.deflate import DEFAULT_CLIENT_MAX_WINDOW_BITS
from tests.conftest import ServerProcess, StartServer
from tests.integration.interop_messages import Mix, digest_of, message_mix

APP = "tests.apps:protocol"
TIMEOUT = 20.0
CLOSE_CODE, CLOSE_REASON = 4002, "python done ✓"

Message = str | bytes


async def echo_mix(
    send: Callable[[Message], Awaitable[None]], recv: Callable[[], Awaitable[Message]], mix: Mix
) -> None:
    """Send the mix while reading the echoes (so neither side's buffers fill
    up against the other), and check every echo against what was sent."""

    async def send_all() -> None:
        for message in mix.messages:
            await send(message)

    sender = asyncio.create_task(send_all())
    echoes = [await recv() for _ in mix.messages]
    await sender
    mismatches = [
        i for i, (got, want) in enumerate(zip(echoes, mix.messages, strict=True)) if got != want
    ]
    assert mismatches == [], f"echoes differing from what was sent: {mismatches[:10]}"
    assert digest_of(echoes) == mix.digest()


async def last_disconnect(server: ServerProcess) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.get(f"{server.url}/last-disconnect")
    assert response.status_code == 200
    result: dict[str, object] = response.json()
    return result


@pytest.fixture
def server(run_server: StartServer) -> ServerProcess:
    return run_server(APP)


# --- websockets ------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate"])
async def test_websockets_echoes_the_message_mix(
    server: ServerProcess, compression: str | None
) -> None:
    mix = message_mix()
    async with websockets_connect(
        f"{server.ws_url}/echo", compression=compression, max_size=None
    ) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert ("permessage-deflate" in extensions) is (compression == "deflate")

        async def recv() -> Message:
            return await asyncio.wait_for(ws.recv(), TIMEOUT)

        await echo_mix(ws.send, recv, mix)
        # One text message in fragments, a character split across two of them.
        await ws.send(iter(["frag", "mént", "s 😀"]))
        assert await recv() == "fragménts 😀"
        await ws.close(CLOSE_CODE, CLOSE_REASON)
    assert ws.close_code == CLOSE_CODE
    assert await last_disconnect(server) == {"code": CLOSE_CODE, "reason": CLOSE_REASON}


async def test_websockets_gets_the_close_code_and_reason_the_app_chose(
    server: ServerProcess,
) -> None:
    async with websockets_connect(f"{server.ws_url}/close/4321") as ws:
        with pytest.raises(websockets.ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert (ws.close_code, ws.close_reason) == (4321, "by server")


async def test_websockets_subprotocol_and_accept_headers(server: ServerProcess) -> None:
    async with websockets_connect(
        f"{server.ws_url}/subprotocol",
        subprotocols=["chat.v2", "v1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response is not None
        assert ws.response.headers["x-chosen-by"] == "app"


async def test_websockets_sees_the_denial_response(server: ServerProcess) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets_connect(f"{server.ws_url}/refuse"):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.body == b"no entry"
    assert response.headers["www-authenticate"] == "x"


# --- aiohttp ---------------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def aiohttp_recv(ws: aiohttp.ClientWebSocketResponse[bool]) -> Message:
    message = await ws.receive(timeout=TIMEOUT)
    if message.type is aiohttp.WSMsgType.TEXT:
        return str(message.data)
    assert message.type is aiohttp.WSMsgType.BINARY, message
    return bytes(message.data)


async def aiohttp_send(ws: aiohttp.ClientWebSocketResponse[bool], message: Message) -> None:
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "deflate"])
async def test_aiohttp_echoes_the_message_mix(
    server: ServerProcess, session: aiohttp.ClientSession, compress: int
) -> None:
    mix = message_mix()
    async with session.ws_connect(
        f"{server.ws_url}/echo", compress=compress, max_msg_size=0
    ) as ws:
        # aiohttp offers a bare client_max_window_bits: the server picks its
        # default window, which aiohttp then compresses with.
        assert ws.compress == (DEFAULT_CLIENT_MAX_WINDOW_BITS if compress else 0)
        await echo_mix(
            lambda message: aiohttp_send(ws, message), lambda: aiohttp_recv(ws), mix
        )
        await ws.close(code=CLOSE_CODE, message=CLOSE_REASON.encode())
    assert ws.close_code == CLOSE_CODE
    assert await last_disconnect(server) == {"code": CLOSE_CODE, "reason": CLOSE_REASON}


async def test_aiohttp_gets_the_close_code_and_reason_the_app_chose(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(f"{server.ws_url}/close/4321") as ws:
        message = await ws.receive(timeout=TIMEOUT)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert (message.data, message.extra) == (4321, "by server")


async def test_aiohttp_subprotocol_and_accept_headers(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(
        f"{server.ws_url}/subprotocol", protocols=("chat.v2", "v1")
    ) as ws:
        assert ws.protocol == "chat.v2"
        assert ws._response.headers["x-chosen-by"] == "app"


async def test_aiohttp_sees_the_denial_response(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with session.ws_connect(f"{server.ws_url}/refuse"):
            pass
    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert refused.value.headers["www-authenticate"] == "x"
