"""Litestar under asgiws: a lifespan context manager filling the app state,
accept headers and subprotocol, the raw ASGI receive with the client's close
code and reason, and a guard that refuses the handshake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, WebSocket, get, websocket
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from tests.frameworks.common import (
    FRAMEWORK_HEADER,
    DisconnectRecord,
    choose_subprotocol,
    close_command,
)

NAME = "litestar"
last_disconnect = DisconnectRecord()


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    app.state.started_by = "lifespan"
    yield


@get("/", media_type="text/plain")
async def home() -> str:
    return f"{NAME} home"


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "state": app.state.started_by}


@get("/last-disconnect")
async def disconnect_record() -> dict[str, Any]:
    return await last_disconnect.wait()


@websocket("/ws")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept(
        subprotocols=choose_subprotocol(socket.scope["subprotocols"]),
        headers={FRAMEWORK_HEADER: NAME},
    )
    while True:
        message: Any = await socket.receive()
        if message["type"] == "websocket.disconnect":
            last_disconnect.record(message["code"], message.get("reason"))
            return
        text = message.get("text")
        if text is None:
            await socket.send_bytes(message["bytes"])
        elif (command := close_command(text)) is not None:
            await socket.close(*command)
            return
        else:
            await socket.send_text(text)


def members_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    raise NotAuthorizedException("members only")


@websocket("/ws/denied", guards=[members_only])
async def denied(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()


app = Litestar(
    route_handlers=[home, health, disconnect_record, echo, denied], lifespan=[lifespan]
)
