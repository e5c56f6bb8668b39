"""`--listen-sockets`: a group of listening sockets per address on uvloop
(SO_REUSEPORT), every one of them served, and a port in use still refused."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import subprocess
import sys

import httpx
import pytest
import websockets

from asgiws.listeners import (
    UVLOOP_LISTEN_SOCKETS,
    bind_tcp,
    can_share_port,
    fixed_local_address,
)
from tests.conftest import REPO_ROOT, StartServer

pytestmark = pytest.mark.skipif(not can_share_port(), reason="SO_REUSEPORT groups are Linux's")

CLIENTS = 200
TIMEOUT = 30.0


def listening_on(port: int) -> int:
    """Listening TCP sockets on 127.0.0.1:`port`, from /proc/net/tcp."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == local and row[3] == "0A")


async def echo_from_many_clients(port: int) -> list[str]:
    """CLIENTS WebSockets at once, each from its own source port (so the
    kernel spreads them over the group), each echoing one message."""

    async def one(number: int) -> str:
        async with websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT) as ws:
            await ws.send(f"client {number}")
            return str(await ws.recv())

    return await asyncio.wait_for(
        asyncio.gather(*(one(number) for number in range(CLIENTS))), TIMEOUT
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--loop", "uvloop"), UVLOOP_LISTEN_SOCKETS),
        (("--loop", "uvloop", "--listen-sockets", "3"), 3),
        (("--loop", "uvloop", "--listen-sockets", "1"), 1),
        (("--loop", "asyncio"), 1),
    ],
)
async def test_every_socket_of_the_group_is_served(
    run_server: StartServer, args: tuple[str, ...], expected: int
) -> None:
    server = run_server("tests.apps:echo", *args)
    assert listening_on(server.port) == expected
    # A socket of the group left out of the event loop would hold about one
    # connection in `expected` unanswered: the gather would time out.
    answers = await echo_from_many_clients(server.port)
    assert answers == [f"client {number}" for number in range(CLIENTS)]
    # One "running on" line for the address, not one per socket.
    assert server.logs().count("asgiws running on") == 1


async def test_workers_share_the_group(run_server: StartServer) -> None:
    server = run_server("tests.apps:echo", "--loop", "uvloop", "--workers", "2")
    assert listening_on(server.port) == UVLOOP_LISTEN_SOCKETS
    answers = await echo_from_many_clients(server.port)
    assert answers == [f"client {number}" for number in range(CLIENTS)]


async def test_a_second_server_on_the_port_fails_and_the_first_keeps_all_connections(
    run_server: StartServer,
) -> None:
    first = run_server("tests.apps:echo", "--loop", "uvloop")
    command = [sys.executable, "-m", "asgiws", "tests.apps:echo", "--loop", "uvloop"]
    second = subprocess.run(
        [*command, "--host", "127.0.0.1", "--port", str(first.port)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    output = second.stdout + second.stderr
    assert second.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{first.port}: Address already in use" in output
    assert "Traceback" not in output
    # Had the second server joined the group, it would have taken a share of
    # the port's connections for as long as it ran; it never listened.
    assert listening_on(first.port) == UVLOOP_LISTEN_SOCKETS
    answers = await echo_from_many_clients(first.port)
    assert answers == [f"client {number}" for number in range(CLIENTS)]


def test_bind_tcp_gives_a_group_one_port_and_refuses_a_port_in_use() -> None:
    group = bind_tcp("127.0.0.1", 0, 16, 4)
    try:
        ports = {sock.getsockname()[1] for sock in group}
        assert len(group) == 4 and len(ports) == 1
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in group)
        # Another group on the port: refused, although SO_REUSEPORT would let it in.
        with pytest.raises(OSError) as refused:
            bind_tcp("127.0.0.1", ports.pop(), 16, 4)
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        for sock in group:
            sock.close()


def test_serve_on_uvloop_binds_a_group_and_refuses_a_port_in_use(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import uvloop

    import asgiws

    async def echo(ws: asgiws.WebSocketServerProtocol) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with asgiws.serve(echo, "127.0.0.1", 0) as server:
            ports = {sock.getsockname()[1] for sock in server.sockets}
            assert len(server.sockets) == UVLOOP_LISTEN_SOCKETS and len(ports) == 1
            port = ports.pop()
            with pytest.raises(OSError) as refused:
                async with asgiws.serve(echo, "127.0.0.1", port):
                    pass
            assert refused.value.errno == errno.EADDRINUSE
            answers = await echo_from_many_clients(port)
            assert answers == [f"client {number}" for number in range(CLIENTS)]
            # One "server listening on" line for the address, not one per socket.
            listening = [r for r in caplog.records if "server listening on" in r.getMessage()]
            assert len(listening) == 1

    caplog.set_level(logging.INFO, logger="asgiws")
    uvloop.run(main())


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_scope_names_the_address_the_client_reached(
    run_server: StartServer, host: str
) -> None:
    # On one IP address the listener's own is every connection's; on every
    # interface each connection's own is asked for.
    server = run_server("tests.apps:scope_json", "--host", host)
    response = httpx.get(f"http://127.0.0.1:{server.port}/", timeout=TIMEOUT)
    assert response.json()["server"] == ["127.0.0.1", server.port]


def test_fixed_local_address_is_the_listeners_unless_it_listens_everywhere() -> None:
    sockets = [socket.socket(family) for family in (socket.AF_INET, socket.AF_INET6)]
    unix = socket.socket(socket.AF_UNIX)
    try:
        sockets[0].bind(("127.0.0.1", 0))
        assert fixed_local_address(sockets[0]) == sockets[0].getsockname()
        sockets[1].bind(("::", 0))
        assert fixed_local_address(sockets[1]) is None
        wildcard = socket.socket(socket.AF_INET)
        sockets.append(wildcard)
        wildcard.bind(("0.0.0.0", 0))
        assert fixed_local_address(wildcard) is None
        assert fixed_local_address(unix) is None
    finally:
        for sock in [*sockets, unix]:
            sock.close()
