"""examples/fastapi_chat under the asgiws CLI: a room's members get each
other's messages and posts from outside, in order."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.conftest import StartServer

TIMEOUT = 10.0


async def test_fastapi_chat_room(run_server: StartServer) -> None:
    server = run_server("examples.fastapi_chat.app:app")
    async with websockets.connect(f"{server.ws_url}/ws/lobby?name=ann") as ann:
        assert json.loads(await ann.recv()) == {"type": "join", "name": "ann"}
        async with websockets.connect(f"{server.ws_url}/ws/lobby?name=bob") as bob:
            assert json.loads(await ann.recv()) == {"type": "join", "name": "bob"}
            assert json.loads(await bob.recv()) == {"type": "join", "name": "bob"}
            await bob.send("hi ann")
            async with httpx.AsyncClient() as http:
                response = await http.post(
                    f"{server.url}/rooms/lobby/messages", json={"name": "bot", "text": "beep"}
                )
                assert response.status_code == 202
                bad = await http.post(
                    f"{server.url}/rooms/a%20b/messages", json={"name": "bot", "text": "x"}
                )
                assert bad.status_code == 422
            for client in (ann, bob):
                got = [json.loads(await asyncio.wait_for(client.recv(), TIMEOUT)) for _ in "12"]
                assert got == [
                    {"type": "message", "name": "bob", "text": "hi ann"},
                    {"type": "message", "name": "bot", "text": "beep"},
                ]
        assert json.loads(await ann.recv()) == {"type": "leave", "name": "bob"}
