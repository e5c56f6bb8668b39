"""A Starlette app with HTTP routes and WebSocket routes on one port.

    asgiws examples.starlette_app.app:app --port 8000

- `GET /health`  -> {"status": "ok"}
- `GET /`        -> an HTML page with a small WebSocket echo and chat demo
- `WS /ws/echo`  -> sends back every text or binary message
- `WS /ws/chat`  -> JSON chat room: send {"user": ..., "text": ...}; everyone
                    connected receives it, plus join/leave notices
- `GET /show_time`, `WS /ws/show_time` -> the guide's show_time page: the
                    server's UTC time, pushed every 1-5 s (plain Starlette)
- `GET /counter`, `WS /ws/counter` -> the guide's counter page: + / -, one
                    value shared by all pages, "N users online" (asgiws.broadcast)

The show_time and counter pages are the files of examples/show_time and
examples/counter, which the handler-API servers there serve too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import logging
import random
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import asgiws

MAX_CHAT_TEXT = 4096
EXAMPLES_DIR = Path(__file__).resolve().parent.parent
SHOW_TIME_HTML = (EXAMPLES_DIR / "show_time" / "index.html").read_text(encoding="utf-8")
COUNTER_HTML = (EXAMPLES_DIR / "counter" / "index.html").read_text(encoding="utf-8")


logger = logging.getLogger("examples.starlette_app")


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


# --- show_time: plain Starlette, as portable as any ASGI app ----------------------------


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


async def show_time_page(request: Request) -> HTMLResponse:
    return HTMLResponse(SHOW_TIME_HTML)


async def push_time(websocket: WebSocket) -> None:
    while True:
        await websocket.send_text(utc_now())
        await asyncio.sleep(random.uniform(1, 5))


async def ws_show_time(websocket: WebSocket) -> None:
    await websocket.accept()
    pusher = asyncio.create_task(push_time(websocket))
    try:
        # Reading is how an ASGI app learns that the page went away; the page
        # itself sends nothing.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        pusher.cancel()
        # The pusher may also have failed on a send after the disconnect: not news.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pusher


# --- counter: the asgiws connection object and broadcast() from a Starlette route -----


def asgiws_connection(websocket: WebSocket) -> asgiws.WebSocketConnection:
    """The asgiws connection behind a Starlette WebSocket (asgiws servers only)."""
    conn = websocket.scope.get("extensions", {}).get(asgiws.CONNECTION_EXTENSION)
    if not isinstance(conn, asgiws.WebSocketConnection):
        raise RuntimeError(
            f"no {asgiws.CONNECTION_EXTENSION!r} extension: serve this app with asgiws"
        )
    return conn


class SharedCounter:
    """The counter's value and the connections of the users looking at it."""

    def __init__(self) -> None:
        self.value = 0
        self.users: set[asgiws.WebSocketConnection] = set()

    def value_event(self) -> str:
        return json.dumps({"type": "value", "value": self.value})

    def users_event(self) -> str:
        return json.dumps({"type": "users", "count": len(self.users)})

    def join(self, conn: asgiws.WebSocketConnection) -> None:
        self.users.add(conn)
        asgiws.broadcast(self.users, self.users_event())

    def leave(self, conn: asgiws.WebSocketConnection) -> None:
        self.users.discard(conn)
        asgiws.broadcast(self.users, self.users_event())

    def apply(self, action: object) -> bool:
        """Carry out "plus" or "minus" and tell every user; False for anything else."""
        if action not in ("plus", "minus"):
            return False
        self.value += 1 if action == "plus" else -1
        # One frame for all users, written without awaiting any of them.
        asgiws.broadcast(self.users, self.value_event())
        return True


counter = SharedCounter()


async def counter_page(request: Request) -> HTMLResponse:
    return HTMLResponse(COUNTER_HTML)


async def ws_counter(websocket: WebSocket) -> None:
    await websocket.accept()
    conn = asgiws_connection(websocket)
    counter.join(conn)
    try:
        await websocket.send_text(counter.value_event())
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                action = json.loads(message.get("text") or "")["action"]
            except (ValueError, TypeError, KeyError):
                action = None
            if not counter.apply(action):
                logger.error("unsupported event: %r", message.get("text", message.get("bytes")))
    except WebSocketDisconnect:
        pass
    finally:
        counter.leave(conn)


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
  <li><a href="/show_time">/show_time</a> (the server's time, over <code>/ws/show_time</code>)</li>
  <li><a href="/counter">/counter</a> (a shared counter, over <code>/ws/counter</code>)</li>
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
        Route("/show_time", show_time_page),
        WebSocketRoute("/ws/show_time", ws_show_time),
        Route("/counter", counter_page),
        WebSocketRoute("/ws/counter", ws_counter),
    ]
)
