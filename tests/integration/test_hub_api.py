"""`asgiws.Hub` from Python: arguments, channel names, subscriptions, and
joining `serve(handler)` connections (the memory:// engine, one process)."""

from __future__ import annotations

import asyncio

import pytest
import websockets

import asgiws
from asgiws.hub import MAX_CHANNEL_BYTES, SlowSubscriber, validate_channel

TIMEOUT = 10.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://localhost"}, "unsupported hub URL"),
        ({"slow_subscriber": "wait"}, "expected 'drop' or 'close'"),
        ({"max_queued": -1}, "max_queued"),
        ({"subscription_queue": 0}, "subscription_queue"),
        ({"timeout": 0}, "timeout"),
        ({"reconnect_min": 2.0, "reconnect_max": 1.0}, "at least reconnect_min"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        asgiws.Hub(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", ValueError),
        ("a b", ValueError),
        ("tab\there", ValueError),
        ("x" * (MAX_CHANNEL_BYTES + 1), ValueError),
        ("\ud800", ValueError),
        (b"bytes", TypeError),
    ],
)
def test_bad_channel_names(name: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        validate_channel(name)


def test_good_channel_names() -> None:
    for name in ("room", "chat:lobby", "über-straße", "x" * MAX_CHANNEL_BYTES):
        assert validate_channel(name) == name


async def test_a_hub_must_be_started() -> None:
    hub = asgiws.Hub()
    with pytest.raises(asgiws.HubError, match="not started"):
        await hub.publish("room", "hi")


async def test_subscription_gets_messages_in_order_with_their_type() -> None:
    async with asgiws.Hub() as hub:
        async with hub.subscribe("room") as sub:
            await hub.publish("room", "text")
            await hub.publish("room", b"\x00bytes")
            await hub.publish("room", bytearray(b"ba"))
            await hub.publish("other", "not for us")
            assert [await sub.get() for _ in range(3)] == ["text", b"\x00bytes", b"ba"]
        with pytest.raises(TypeError):
            await hub.publish("room", 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await hub.publish("no spaces", "x")


async def test_subscription_bound_drop_and_close() -> None:
    async with asgiws.Hub(subscription_queue=2) as hub, hub.subscribe("q") as sub:
        for i in range(5):
            await hub.publish("q", str(i))
        assert (await sub.get(), await sub.get(), sub.dropped) == ("0", "1", 3)
        assert hub.stats.dropped == 3
    async with asgiws.Hub(subscription_queue=2, slow_subscriber="close") as hub:
        async with hub.subscribe("q") as sub:
            for i in range(3):
                await hub.publish("q", str(i))
            assert [await sub.get(), await sub.get()] == ["0", "1"]
            with pytest.raises(SlowSubscriber):
                await sub.get()


async def test_closing_the_hub_ends_subscriptions() -> None:
    hub = asgiws.Hub()
    await hub.start()
    received: list[object] = []
    subscribed = asyncio.Event()

    async def consume() -> None:
        async with hub.subscribe("end") as sub:
            subscribed.set()
            async for message in sub:
                received.append(message)

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(subscribed.wait(), TIMEOUT)
    await hub.publish("end", "last")
    await hub.close()
    await asyncio.wait_for(task, TIMEOUT)
    assert received == ["last"]


async def test_serve_handler_connections_join_once_and_leave() -> None:
    async with asgiws.Hub() as hub:

        async def handler(websocket: asgiws.WebSocketConnection) -> None:
            await hub.join("room", websocket)
            await hub.join("room", websocket)  # twice is once
            await websocket.send("joined")
            async for message in websocket:
                if message == "leave":
                    await hub.leave("room", websocket)
                    await websocket.send("left")

        async with asgiws.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as client:
                assert await client.recv() == "joined"
                assert hub.members("room") == 1
                await hub.publish("room", "one copy")
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == "one copy"
                await client.send("leave")
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == "left"
                assert hub.members("room") == 0
                await hub.publish("room", "not delivered")
                await client.send("leave")
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == "left"
        assert hub.stats.delivered == 1


async def test_join_refuses_what_is_not_a_websocket() -> None:
    async with asgiws.Hub() as hub:
        with pytest.raises(TypeError, match="WebSocketConnection or an ASGI WebSocket"):
            await hub.join("room", object())


def test_redis_url_needs_nothing_at_construction() -> None:
    """Constructing does not connect; the password is never shown."""
    hub = asgiws.Hub("redis://:secret@127.0.0.1:1/0")
    assert "secret" not in repr(hub)
    assert not hub.connected


async def test_unreachable_redis_fails_start_clearly() -> None:
    hub = asgiws.Hub("redis://127.0.0.1:1/0", timeout=1.0)
    with pytest.raises(asgiws.HubUnavailable, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"):
        await hub.start()
