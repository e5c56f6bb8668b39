"""A FastAPI chat room on `asgiws.Hub`: rooms are hub channels.

    asgiws examples.fastapi_chat.app:app --port 8000
    HUB_URL=redis://127.0.0.1:6379/0 asgiws examples.fastapi_chat.app:app --port 8001  # many

Open http://127.0.0.1:8000/ (the page asks for a name and a room), or talk
to `WS /ws/{room}?name=NAME` directly: each text message you send reaches
everybody in the room, as JSON {"type": "message", "name": ..., "text": ...};
{"type": "join"|"leave", "name": ...} tell who comes and goes.
`POST /rooms/{room}/messages` with {"name": ..., "text": ...} posts from
outside a WebSocket (a bot, a webhook); 503 while Redis is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

import asgiws

HUB_URL = os.environ.get("HUB_URL", "memory://")
MAX_TEXT = 4096
MAX_NAME = 64
INDEX_HTML = Path(__file__).with_name("index.html").read_text(encoding="utf-8")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with asgiws.Hub(HUB_URL) as hub:
        app.state.hub = hub
        yield


app = FastAPI(title="asgiws hub chat", lifespan=lifespan)


class Post(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    text: str = Field(min_length=1, max_length=MAX_TEXT)


def room_channel(room: str) -> str:
    """Room names become hub channels; a bad one is the client's error."""
    channel = "chat:" + room
    try:
        asgiws.hub.validate_channel(channel)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return channel


def event(kind: str, name: str, text: str | None = None) -> str:
    body = {"type": kind, "name": name}
    if text is not None:
        body["text"] = text
    return json.dumps(body)


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return INDEX_HTML


@app.post("/rooms/{room}/messages", status_code=202)
async def post_message(room: str, post: Post, request: Request) -> dict[str, str]:
    hub: asgiws.Hub = request.app.state.hub
    try:
        await hub.publish(room_channel(room), event("message", post.name, post.text))
    except asgiws.HubUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return {"status": "sent"}


@app.websocket("/ws/{room}")
async def chat(
    websocket: WebSocket,
    room: str,
    name: Annotated[str, Query(min_length=1, max_length=MAX_NAME)],
) -> None:
    hub: asgiws.Hub = websocket.app.state.hub
    try:
        channel = room_channel(room)
    except HTTPException:
        await websocket.close(code=1008, reason="invalid room name")
        return
    await websocket.accept()
    await hub.join(channel, websocket)
    try:
        await hub.publish(channel, event("join", name))
        while True:
            text = await websocket.receive_text()
            if len(text) > MAX_TEXT:
                await websocket.close(code=1009, reason=f"at most {MAX_TEXT} characters")
                return
            await hub.publish(channel, event("message", name, text))
    except WebSocketDisconnect:
        pass
    except asgiws.HubUnavailable:
        await websocket.close(code=1013, reason="chat unavailable, try again later")
        return
    finally:
        await hub.leave(channel, websocket)
    with contextlib.suppress(asgiws.HubUnavailable):
        await hub.publish(channel, event("leave", name))
