"""The `http` and `websocket` scopes come from one builder: on a real
`Server`, the same request line sent by httpx and by the websockets client
gives scopes that agree on every key they share."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from asgiws.config import Config
from asgiws.server import Server
from asgiws.types import Receive, Scope, Send
from tests.apps import lifespan

TARGET = "/p%C3%A9/x%2Fy?q=1&r=%20"


class ScopeRecorder:
    """A raw ASGI app that keeps the scope of each kind it serves.

    Lifespan startup puts a value in the state; each request adds a key to
    its own copy, which must not reach the next scope."""

    def __init__(self) -> None:
        self.scopes: dict[str, Scope] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            scope["state"]["pool"] = "shared"
            await lifespan(receive, send)
            return
        self.scopes[scope["type"]] = {**scope, "state": dict(scope["state"])}
        scope["state"]["leaked"] = True
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})


async def test_http_and_websocket_scopes_agree() -> None:
    app = ScopeRecorder()
    server = Server(Config(app=app, port=0, lifespan="on", root_path="/mount"))
    await server.startup()
    try:
        assert server.started
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}{TARGET}")
        assert response.status_code == 204
        async with connect(f"ws://127.0.0.1:{port}{TARGET}", subprotocols=["chat"]) as ws:  # type: ignore[list-item]
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
    finally:
        server.should_exit = True
        await server.shutdown()

    http, websocket = app.scopes["http"], app.scopes["websocket"]
    own: dict[str, set[str]] = {"http": {"method"}, "websocket": {"subprotocols", "extensions"}}
    assert set(http) - own["http"] == set(websocket) - own["websocket"]
    shared = set(http) - own["http"] - {"type", "scheme", "client", "headers"}
    assert {key: http[key] for key in shared} == {key: websocket[key] for key in shared}
    expected: dict[str, Any] = {
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "server": ("127.0.0.1", port),
        "root_path": "/mount",
        # Decoded, under root_path; raw_path as sent (%2F stays apart from /).
        "path": "/mount/pé/x/y",
        "raw_path": b"/mount/p%C3%A9/x%2Fy",
        "query_string": b"q=1&r=%20",
        "state": {"pool": "shared"},
    }
    assert {key: http[key] for key in expected} == expected
    assert (http["type"], http["scheme"]) == ("http", "http")
    assert (websocket["type"], websocket["scheme"]) == ("websocket", "ws")
    # Two TCP connections from the same host: the port differs.
    assert http["client"][0] == websocket["client"][0] == "127.0.0.1"
    assert http["method"] == "GET"
    assert websocket["subprotocols"] == ["chat"]
    assert set(websocket["extensions"]) == {"websocket.http.response", "asgiws.connection"}
