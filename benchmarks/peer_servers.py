"""Non-ASGI peer servers for the benchmark: the same WebSocket routes as apps.py.

    python -m benchmarks.peer_servers {websockets,picows} --port PORT [--no-deflate]

Both run on uvloop, one process, and behave like `benchmarks.apps` does for
the WebSocket scenarios (see its docstring):

- ``/broadcast?group=G``: a subscriber of group G; it only waits to be closed.
- ``/broadcast/control?group=G``: text ``count`` is answered with the number of
  subscribers of G; a binary message is sent to every subscriber of G.
- any other path: echo every message with its type.

They are not HTTP servers: a plain ``GET`` (no Upgrade) gets ``200 Hello,
world!`` so that run.py's readiness probe works, and run.py does not run
http_hello against them.

- ``websockets``: websockets' asyncio server (``websockets.asyncio.server.serve``)
  with its defaults (permessage-deflate offered with websockets' own window
  and memory settings) except keepalive pings off and a 16 MiB message limit
  (uvicorn's default; the 1 MiB echo is exactly websockets' default limit).
  The fan-out awaits ``send`` per subscriber like the ASGI app does.
  ``--no-deflate`` passes ``compression=None``.
- ``picows``: ``picows.ws_create_server`` with a frame listener that sends each
  data frame back as it came (same opcode, fin and payload: a valid echo of
  fragmented messages too).  picows has no permessage-deflate.
"""

from __future__ import annotations

import argparse
import http
import sys
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import uvloop

HELLO = b"Hello, world!"
MAX_MESSAGE = 16 * 1024 * 1024


def group_of(path: str) -> tuple[str, str]:
    """(route, group) of a request target such as /broadcast?group=g1."""
    parts = urlsplit(path)
    return parts.path, parse_qs(parts.query).get("group", [""])[0]


# ---------------------------------------------------------------- websockets


async def serve_websockets(port: int, deflate: bool) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response

    groups: dict[str, set[ServerConnection]] = {}

    def plain_get(connection: ServerConnection, request: Request) -> Response | None:
        if "upgrade" in request.headers:
            return None
        headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
        return Response(http.HTTPStatus.OK, "OK", headers, HELLO)

    async def handler(connection: ServerConnection) -> None:
        route, group = group_of(connection.request.path if connection.request else "/")
        if route == "/broadcast":
            members = groups.setdefault(group, set())
            members.add(connection)
            try:
                await connection.wait_closed()
            finally:
                members.discard(connection)
                if not members:
                    groups.pop(group, None)
        elif route == "/broadcast/control":
            async for message in connection:
                if isinstance(message, str):
                    await connection.send(str(len(groups.get(group, ()))))
                    continue
                for member in tuple(groups.get(group, ())):
                    try:
                        await member.send(message)
                    except ConnectionClosed:
                        groups.get(group, set()).discard(member)
        else:
            async for message in connection:
                await connection.send(message)

    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression="deflate" if deflate else None,
        process_request=plain_get,
        ping_interval=None,
        max_size=MAX_MESSAGE,
    ) as server:
        await server.serve_forever()


# ---------------------------------------------------------------- picows


async def serve_picows(port: int) -> None:
    from picows import (
        WSCloseCode,
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
        ws_create_server,
    )

    groups: dict[str, set[WSTransport]] = {}

    def closing(transport: WSTransport, frame: WSFrame) -> bool:
        """Answer a close frame; True when the frame was one."""
        if frame.msg_type != WSMsgType.CLOSE:
            return False
        if not transport.is_close_frame_sent:
            transport.send_close(frame.get_close_code() or WSCloseCode.OK)
        transport.disconnect()
        return True

    class Echo(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            kind = frame.msg_type
            if kind in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                transport.send(kind, frame.get_payload_as_memoryview(), frame.fin)
            else:  # pings are answered by picows itself (enable_auto_pong)
                closing(transport, frame)

    class Subscriber(WSListener):
        def __init__(self, group: str) -> None:
            super().__init__()
            self.group = group

        def on_ws_connected(self, transport: WSTransport) -> None:
            groups.setdefault(self.group, set()).add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            members = groups.get(self.group)
            if members is not None:
                members.discard(transport)
                if not members:
                    del groups[self.group]

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            closing(transport, frame)

    class Control(WSListener):
        def __init__(self, group: str) -> None:
            super().__init__()
            self.group = group

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                count = len(groups.get(self.group, ()))
                transport.send(WSMsgType.TEXT, str(count).encode())
            elif frame.msg_type == WSMsgType.BINARY:
                payload = frame.get_payload_as_bytes()
                for member in tuple(groups.get(self.group, ())):
                    if not member.is_disconnected:
                        member.send(WSMsgType.BINARY, payload)
            else:
                closing(transport, frame)

    def route(request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
        if request.headers.get("upgrade") is None:
            ok = WSUpgradeResponse.create_ok_response(HELLO, {"Content-Type": "text/plain"})
            return WSUpgradeResponseWithListener(ok, None)
        path, group = group_of(request.path.decode("latin-1"))
        if path == "/broadcast":
            return Subscriber(group)
        if path == "/broadcast/control":
            return Control(group)
        return Echo()

    server = await ws_create_server(
        route, "127.0.0.1", port, max_frame_size=MAX_MESSAGE, websocket_handshake_timeout=10
    )
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=("websockets", "picows"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--no-deflate", action="store_true", help="websockets: do not negotiate permessage-deflate"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.server == "websockets":
        uvloop.run(serve_websockets(args.port, not args.no_deflate))
    else:
        uvloop.run(serve_picows(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
