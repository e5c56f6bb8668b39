"""FastAPI under asgiws: dependency injection in a WebSocket route (the
token check), `WebSocketDisconnect` with the client's code and reason,
`WebSocketException` as the denial (a close before accept: HTTP 403),
lifespan state, accept headers and subprotocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketException
from fastapi.responses import PlainTextResponse
from starlette import status

from tests.frameworks.common import FRAMEWORK_HEADER, DisconnectRecord, choose_subprotocol
from tests.frameworks.starlette_app import echo_until_disconnect

NAME = "fastapi"
TOKEN = "let-me-in"
last_disconnect = DisconnectRecord()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"started_by": "lifespan"}


app = FastAPI(lifespan=lifespan)


async def caller(websocket: WebSocket, token: str | None = None) -> str:
    """The dependency: `?token=` must be TOKEN, else the handshake is refused."""
    if token != TOKEN:
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason="bad token")
    return "member"


@app.get("/", response_class=PlainTextResponse)
async def home() -> str:
    return f"{NAME} home"


@app.get("/health")
async def health(request: Request) -> dict[str, str]:
    return {"status": "ok", "state": request.state.started_by}


@app.get("/last-disconnect")
async def disconnect_record() -> dict[str, Any]:
    return await last_disconnect.wait()


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept(
        subprotocol=choose_subprotocol(websocket.scope["subprotocols"]),
        headers=[(FRAMEWORK_HEADER.encode(), NAME.encode())],
    )
    await echo_until_disconnect(websocket, last_disconnect)


@app.websocket("/ws/denied")
async def ws_denied(websocket: WebSocket, who: Annotated[str, Depends(caller)]) -> None:
    """Refused unless `?token=let-me-in`; then greets with what the dependency gave."""
    await websocket.accept(headers=[(FRAMEWORK_HEADER.encode(), NAME.encode())])
    await websocket.send_text(f"hello {who}")
    await echo_until_disconnect(websocket, last_disconnect)
