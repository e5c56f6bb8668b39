#!/usr/bin/env python
"""Publish-subscribe: clients subscribe to channels and publish to them.

    python examples/patterns/pubsub.py [PORT]    # PORT also from $PORT; default 8765

Client messages (JSON text):
    {"subscribe": "news"}                     -> {"subscribed": "news"}
    {"unsubscribe": "news"}                   -> {"unsubscribed": "news"}
    {"publish": "news", "message": "hello"}   -> {"published": "news", "receivers": N}
and every subscriber of "news" gets {"channel": "news", "message": "hello"}.

The `Hub` lives in this process.  To fan out across several server
processes, put a message broker behind the same three methods (the guide
suggests Redis Pub/Sub: publish() becomes PUBLISH, and one task per process
reads the subscription and calls broadcast() for its local subscribers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections import defaultdict
from typing import Any

import asgiws

HOST = "127.0.0.1"


class Hub:
    """Which connections listen to which channel, and fan-out to them."""

    def __init__(self) -> None:
        self.channels: defaultdict[str, set[asgiws.WebSocketConnection]] = defaultdict(set)

    def subscribe(self, websocket: asgiws.WebSocketConnection, channel: str) -> None:
        self.channels[channel].add(websocket)

    def unsubscribe(self, websocket: asgiws.WebSocketConnection, channel: str) -> None:
        subscribers = self.channels.get(channel)
        if subscribers is not None:
            subscribers.discard(websocket)
            if not subscribers:
                del self.channels[channel]  # no empty channels piling up

    def unsubscribe_all(self, websocket: asgiws.WebSocketConnection) -> None:
        for channel in list(self.channels):
            self.unsubscribe(websocket, channel)

    def publish(self, channel: str, message: str) -> int:
        """Send to the channel's subscribers; return how many it went to."""
        subscribers = self.channels.get(channel, set())
        event = json.dumps({"channel": channel, "message": message})
        return asgiws.broadcast(subscribers, event)


hub = Hub()


def answer(hub: Hub, websocket: asgiws.WebSocketConnection, request: Any) -> dict[str, Any]:
    """Carry out one client request; the dict is the reply to that client."""
    if not isinstance(request, dict):
        return {"error": "expected a JSON object"}
    if isinstance(channel := request.get("subscribe"), str):
        hub.subscribe(websocket, channel)
        return {"subscribed": channel}
    if isinstance(channel := request.get("unsubscribe"), str):
        hub.unsubscribe(websocket, channel)
        return {"unsubscribed": channel}
    channel, message = request.get("publish"), request.get("message")
    if isinstance(channel, str) and isinstance(message, str):
        return {"published": channel, "receivers": hub.publish(channel, message)}
    return {"error": 'send {"subscribe": C}, {"unsubscribe": C} or {"publish": C, "message": M}'}


async def handler(websocket: asgiws.WebSocketConnection) -> None:
    try:
        async for raw in websocket:
            try:
                request = json.loads(raw)
            except ValueError:
                request = None
            await websocket.send(json.dumps(answer(hub, websocket, request)))
    finally:
        hub.unsubscribe_all(websocket)


async def main(port: int) -> None:
    async with asgiws.serve(handler, HOST, port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{HOST}:{bound}", flush=True)
        await asyncio.Future()  # run forever


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8765"))
    # Ctrl+C: asyncio.run() cancels main(), which closes the server; exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(port))
