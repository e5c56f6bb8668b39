"""How `broadcast()` (and the hub's fan-out) hands its shared frame to each
connection: straight to the socket of a plain TCP transport that holds
nothing (`asgiws.connection.shared_write`), never around a TLS transport,
on uvloop's loop and on asyncio's; the `websockets` clients get every
message intact and in order either way."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import pytest
import trustme
import uvloop
from websockets.asyncio.client import connect

from asgiws import WebSocketConnection, broadcast, serve
from asgiws.connection import shared_write

TIMEOUT = 5.0
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def broadcast_on(loop: str, tls: bool) -> list[WebSocketConnection]:
    """`broadcast_to_three(tls)` on a new event loop of that kind
    (asyncio.Runner is 3.11+)."""
    event_loop = LOOPS[loop]()
    try:
        joined = event_loop.run_until_complete(broadcast_to_three(tls))
        event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    finally:
        event_loop.close()
    return joined


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_context)
    return server_context, client_context


async def broadcast_to_three(tls: bool) -> list[WebSocketConnection]:
    """Three clients get 200 broadcasts of each kind, in order; the server
    side's connections are returned (closed by then)."""
    server_context, client_context = tls_contexts() if tls else (None, None)
    joined: list[WebSocketConnection] = []
    all_joined = asyncio.Event()

    async def handler(websocket: WebSocketConnection) -> None:
        joined.append(websocket)
        if len(joined) == 3:
            all_joined.set()
        await websocket.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ssl=server_context) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/"
        clients = [await connect(url, ssl=client_context) for _ in range(3)]
        await asyncio.wait_for(all_joined.wait(), TIMEOUT)
        for n in range(200):
            assert broadcast(joined, f"text {n}") == 3
            assert broadcast(joined, n.to_bytes(2, "big") * 500) == 3  # 1,000 bytes
        for client in clients:
            for n in range(200):
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == f"text {n}"
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == n.to_bytes(2, "big") * 500
            await client.close()
    return joined


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_plain_tcp_connections_are_written_to_their_socket(loop: str) -> None:
    joined = broadcast_on(loop, tls=False)
    if shared_write.write_each is None:  # no C accelerator: through the transports
        assert [conn._writer.fd for conn in joined] == [None, None, None]
    else:  # each connection found its own socket to write the shared frames to
        assert all(conn._writer.fd is not None and conn._writer.fd >= 0 for conn in joined)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_tls_connections_are_never_written_around(loop: str) -> None:
    joined = broadcast_on(loop, tls=True)
    # Raw bytes on a TLS socket would break the record stream: the clients
    # in broadcast_to_three read every message, and no connection was given
    # a descriptor.
    expected = None if shared_write.write_each is None else -1
    assert [conn._writer.fd for conn in joined] == [expected] * 3
