"""The example Starlette app, served by the real CLI, used by real clients."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ServerProcess, StartServer

EXAMPLE_APP = "examples.starlette_app.app:app"
TIMEOUT = 10


@pytest.fixture
def example(run_server: StartServer) -> ServerProcess:
    return run_server(EXAMPLE_APP)


def recv_json(ws: ClientConnection) -> dict[str, Any]:
    message = ws.recv(timeout=TIMEOUT)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    data = json.loads(message)
    assert isinstance(data, dict)
    return data


def test_health_is_json_ok(example: ServerProcess) -> None:
    response = httpx.get(example.url + "/health", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_index_page_links_routes_and_demo(example: ServerProcess) -> None:
    response = httpx.get(example.url + "/", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for needle in ('href="/health"', "/ws/echo", "/ws/chat", "new WebSocket("):
        assert needle in response.text


def test_unknown_path_is_404(example: ServerProcess) -> None:
    assert httpx.get(example.url + "/nope", timeout=TIMEOUT).status_code == 404


def test_http_keep_alive_serves_many_requests_on_one_connection(example: ServerProcess) -> None:
    with httpx.Client(base_url=example.url, timeout=TIMEOUT) as client:
        for _ in range(20):
            assert client.get("/health").json() == {"status": "ok"}


def test_ws_echo_returns_text_and_bytes_unchanged(example: ServerProcess) -> None:
    with connect(example.ws_url + "/ws/echo", open_timeout=TIMEOUT) as ws:
        messages: list[str | bytes] = ["hello", "", "ünïcødé ✓", b"\x00\xff", b"", "x" * 100_000]
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message


def test_ws_chat_two_clients_see_each_others_messages(example: ServerProcess) -> None:
    url = example.ws_url + "/ws/chat"
    with connect(url + "?user=alice", open_timeout=TIMEOUT) as alice:
        assert recv_json(alice) == {"type": "join", "user": "alice", "members": 1}
        with connect(url + "?user=bob", open_timeout=TIMEOUT) as bob:
            joined = {"type": "join", "user": "bob", "members": 2}
            assert recv_json(alice) == joined
            assert recv_json(bob) == joined

            bob.send(json.dumps({"user": "bob", "text": "hi alice"}))
            said = {"type": "message", "user": "bob", "text": "hi alice"}
            assert recv_json(alice) == said
            assert recv_json(bob) == said

            alice.send(json.dumps({"user": "alice", "text": "hi bob"}))
            said = {"type": "message", "user": "alice", "text": "hi bob"}
            assert recv_json(bob) == said
            assert recv_json(alice) == said
        assert recv_json(alice) == {"type": "leave", "user": "bob", "members": 1}


def test_ws_chat_invalid_message_gets_an_error_and_the_room_goes_on(
    example: ServerProcess,
) -> None:
    with connect(example.ws_url + "/ws/chat?user=carol", open_timeout=TIMEOUT) as ws:
        assert recv_json(ws)["type"] == "join"
        bad_messages: list[str | bytes] = [
            "{not json",
            "[1, 2]",
            json.dumps({"user": "carol"}),
            b"\x01binary",
        ]
        for bad in bad_messages:
            ws.send(bad)
            reply = recv_json(ws)
            assert reply["type"] == "error"
            assert reply["error"]
        ws.send(json.dumps({"user": "carol", "text": "still here"}))
        assert recv_json(ws) == {"type": "message", "user": "carol", "text": "still here"}
