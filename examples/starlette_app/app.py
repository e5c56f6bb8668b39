"""A Starlette app with HTTP routes and WebSocket routes on one port.

    asgiws examples.starlette_app.app:app --port 8000

- `GET /health`  -> {"status": "ok"}
- `GET /`        -> an HTML page with a small WebSocket echo and chat demo
- `WS /ws/echo`  -> sends back every text or binary message
- `WS /ws/chat`  -> JSON chat room: send {"user": ..., "text": ...}; everyone
                    connected receives it, plus join/leave notices
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_CHAT_TEXT = 4096


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def homepage(request: Request) -> HTMLResponse:
    return HTMLResponse(INDEX_HTML)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        # "" is a valid text message: compare with None, not truthiness.
        text = message.get("text")
        if text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message.get("bytes") or b"")


class ChatRoom:
    """The connected chat clients of this process, and fan-out to all of them."""

    def __init__(self) -> None:
        self.members: dict[WebSocket, str] = {}
        self._guest_numbers = itertools.count(1)

    def join(self, websocket: WebSocket) -> str:
        name = websocket.query_params.get("user") or f"guest-{next(self._guest_numbers)}"
        self.members[websocket] = name
        return name

    def leave(self, websocket: WebSocket) -> str | None:
        return self.members.pop(websocket, None)

    async def broadcast(self, event: dict[str, Any]) -> None:
        """Send to every member at once; a member whose send fails is dropped, not awaited."""
        text = json.dumps(event)
        members = list(self.members)
        results = await asyncio.gather(
            *(member.send_text(text) for member in members), return_exceptions=True
        )
        for member, result in zip(members, results, strict=True):
            if isinstance(result, Exception):
                self.leave(member)


room = ChatRoom()


def parse_chat_message(raw: str) -> dict[str, str]:
    """Validate one client message; ValueError says what is wrong with it."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError('expected an object like {"user": "...", "text": "..."}')
    user, text = data.get("user"), data.get("text")
    if not isinstance(user, str) or not isinstance(text, str):
        raise ValueError('"user" and "text" must both be strings')
    if len(text) > MAX_CHAT_TEXT:
        raise ValueError(f'"text" is longer than {MAX_CHAT_TEXT} characters')
    return {"user": user, "text": text}


async def ws_chat(websocket: WebSocket) -> None:
    await websocket.accept()
    name = room.join(websocket)
    await room.broadcast({"type": "join", "user": name, "members": len(room.members)})
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                await websocket.send_text(
                    json.dumps({"type": "error", "error": "send JSON text, not binary"})
                )
                continue
            try:
                chat = parse_chat_message(text)
            except ValueError as exc:
                # A bad message gets an answer; the connection and the room go on.
                await websocket.send_text(json.dumps({"type": "error", "error": str(exc)}))
                continue
            await room.broadcast({"type": "message", **chat})
    except WebSocketDisconnect:
        pass
    finally:
        if room.leave(websocket) is not None:
            await room.broadcast({"type": "leave", "user": name, "members": len(room.members)})


INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>asgiws example</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; }
  #log, #chat-log { border: 1px solid #ccc; padding: .5rem; height: 10rem; overflow: auto; }
  .error { color: #b00; }
</style>
</head>
<body>
<h1>asgiws example</h1>
<p>HTTP and WebSocket routes on one port.</p>
<ul>
  <li><a href="/health">/health</a> (JSON health check)</li>
  <li><code>/ws/echo</code> (WebSocket echo)</li>
  <li><code>/ws/chat</code> (WebSocket chat room)</li>
</ul>

<h2>Echo</h2>
<form id="echo-form">
  <input id="echo-input" value="hello" autocomplete="off">
  <button id="echo-send" type="submit">Send</button>
</form>
<div id="log"></div>

<h2>Chat</h2>
<form id="chat-form">
  <input id="chat-user" value="me" size="8">
  <input id="chat-input" placeholder="message" autocomplete="off">
  <button id="chat-send" type="submit">Send</button>
</form>
<div id="chat-log"></div>

<script>
const base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;

function append(id, text, cls) {
  const line = document.createElement("div");
  line.textContent = text;
  if (cls) line.className = cls;
  document.getElementById(id).appendChild(line);
}

const echo = new WebSocket(base + "/ws/echo");
echo.onopen = () => append("log", "connected");
echo.onmessage = (event) => append("log", "received: " + event.data);
echo.onclose = (event) => append("log", "closed (" + event.code + ")");
document.getElementById("echo-form").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("echo-input").value;
  echo.send(text);
  append("log", "sent: " + text);
};

const chat = new WebSocket(base + "/ws/chat?user=" + encodeURIComponent(
  document.getElementById("chat-user").value));
chat.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.type === "message") append("chat-log", msg.user + ": " + msg.text);
  else if (msg.type === "error") append("chat-log", "error: " + msg.error, "error");
  else append("chat-log", msg.user + " " + (msg.type === "join" ? "joined" : "left"));
};
document.getElementById("chat-form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("chat-input");
  chat.send(JSON.stringify({user: document.getElementById("chat-user").value, text: input.value}));
  input.value = "";
};
</script>
</body>
</html>
"""

app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/health", health),
        WebSocketRoute("/ws/echo", ws_echo),
        WebSocketRoute("/ws/chat", ws_chat),
    ]
)
