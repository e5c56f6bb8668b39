"""Quart under asgiws: `before_serving` (run by ASGI lifespan), accept
headers and subprotocol, `websocket.close` with a code and reason, and
`abort(401)` before accept, which Quart sends as an HTTP response through
the `websocket.http.response` extension."""

from __future__ import annotations

from typing import Any

from quart import Quart, abort, websocket

from tests.frameworks.common import FRAMEWORK_HEADER, choose_subprotocol, close_command

NAME = "quart"
app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    app.config["STARTED_BY"] = "lifespan"


@app.get("/")
async def home() -> tuple[str, int, dict[str, str]]:
    return f"{NAME} home", 200, {"content-type": "text/plain"}


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "state": app.config["STARTED_BY"]}


@app.websocket("/ws")
async def echo() -> None:
    await websocket.accept(
        headers={FRAMEWORK_HEADER: NAME},
        subprotocol=choose_subprotocol(websocket.requested_subprotocols),
    )
    while True:
        # Quart ends this handler (cancels it) when the client closes: it does
        # not hand the client's close code to the app.
        data = await websocket.receive()
        if isinstance(data, bytes):
            await websocket.send(data)
        elif (command := close_command(data)) is not None:
            await websocket.close(*command)
            return
        else:
            await websocket.send(data)


@app.websocket("/ws/denied")
async def denied() -> None:
    abort(401)
