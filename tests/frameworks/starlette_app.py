"""Starlette under asgiws: lifespan state, accept headers and subprotocol,
and a denial response (`send_denial_response`: any HTTP answer instead of
the handshake, through the `websocket.http.response` extension)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.frameworks.common import (
    FRAMEWORK_HEADER,
    DisconnectRecord,
    choose_subprotocol,
    close_command,
)

NAME = "starlette"
last_disconnect = DisconnectRecord()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    # ASGI lifespan state: copied into every request's scope by the server.
    yield {"started_by": "lifespan"}


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{NAME} home")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "state": request.state.started_by})


async def disconnect_record(request: Request) -> JSONResponse:
    return JSONResponse(await last_disconnect.wait())


async def echo_until_disconnect(websocket: WebSocket, record: DisconnectRecord) -> None:
    """Echo text and bytes, obey "close CODE REASON", record the client's close.
    (FastAPI's WebSocket is Starlette's: fastapi_app runs this too.)"""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message["code"], message.get("reason"))
            text = message.get("text")
            if text is None:
                await websocket.send_bytes(message["bytes"])
            elif (command := close_command(text)) is not None:
                await websocket.close(*command)
                return
            else:
                await websocket.send_text(text)
    except WebSocketDisconnect as exc:
        record.record(exc.code, exc.reason)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept(
        subprotocol=choose_subprotocol(websocket.scope["subprotocols"]),
        headers=[(FRAMEWORK_HEADER.encode(), NAME.encode())],
    )
    await echo_until_disconnect(websocket, last_disconnect)


async def denied(websocket: WebSocket) -> None:
    await websocket.send_denial_response(
        PlainTextResponse("members only", status_code=401, headers={"www-authenticate": "x"})
    )


app = Starlette(
    routes=[
        Route("/", home),
        Route("/health", health),
        Route("/last-disconnect", disconnect_record),
        WebSocketRoute("/ws", echo),
        WebSocketRoute("/ws/denied", denied),
    ],
    lifespan=lifespan,
)
