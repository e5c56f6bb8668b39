"""ASGI lifespan: startup/shutdown, failures, unsupported apps, state."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from asgiws.asgi.lifespan import LifespanOff, LifespanOn, make_lifespan
from asgiws.config import Config
from asgiws.types import ServerState

from .http_helpers import serve_http


def lifespan_for(
    app: Any, mode: Any = "auto", state: ServerState | None = None
) -> LifespanOn | LifespanOff:
    """The lifespan the server would run for `app` with `--lifespan mode`."""
    if state is None:
        state = ServerState()
    state.app = app
    return make_lifespan(Config(app=app, lifespan=mode), state)


async def test_startup_and_shutdown_complete_and_share_state() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert scope["asgi"]["version"] == "3.0"
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hello"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["greeting"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    state = ServerState()
    lifespan = lifespan_for(app, "on", state)
    await lifespan.startup()
    assert not lifespan.should_exit and lifespan.error is None
    assert state.lifespan_state == {"greeting": "hello"}
    async with serve_http(app, state) as srv, httpx.AsyncClient() as client:
        assert (await client.get(srv.url)).text == "hello"
    await lifespan.shutdown()
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert not lifespan.should_exit


async def unsupported_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise RuntimeError("only http here")


async def test_auto_carries_on_when_lifespan_is_unsupported(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="asgiws.error")
    lifespan = lifespan_for(unsupported_app, "auto")
    await lifespan.startup()
    await lifespan.shutdown()
    assert not lifespan.should_exit and lifespan.error is None
    assert "'lifespan' protocol appears unsupported" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_on_fails_when_lifespan_is_unsupported(caplog: Any) -> None:
    lifespan = lifespan_for(unsupported_app, "on")
    await lifespan.startup()
    assert lifespan.should_exit
    assert lifespan.error is not None and "only http here" in lifespan.error
    assert "Exception in 'lifespan' protocol" in caplog.text


@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_startup_failed_message_is_reported(mode: str, caplog: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    lifespan = lifespan_for(app, mode)
    await lifespan.startup()
    assert lifespan.should_exit
    assert lifespan.error == "application startup failed: no database"
    assert "no database" in caplog.text


async def test_shutdown_failed_message_is_reported(caplog: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    lifespan = lifespan_for(app)
    await lifespan.startup()
    assert not lifespan.should_exit
    await lifespan.shutdown()
    assert lifespan.should_exit
    assert lifespan.error == "application shutdown failed: flush failed"
    assert "flush failed" in caplog.text


async def test_app_returning_early_does_not_hang() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    lifespan = lifespan_for(app, "on")
    await lifespan.startup()
    await lifespan.shutdown()
    assert not lifespan.should_exit


async def test_out_of_order_messages_are_refused() -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "lifespan.shutdown.complete"})
        except RuntimeError as exc:
            errors.append(exc)
        await send({"type": "lifespan.startup.complete"})
        try:
            await send({"type": "lifespan.startup.complete"})
        except RuntimeError as exc:
            errors.append(exc)
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    lifespan = lifespan_for(app, "on")
    await lifespan.startup()
    await lifespan.shutdown()
    assert len(errors) == 2 and not lifespan.should_exit


async def test_off_does_nothing() -> None:
    called: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    lifespan = lifespan_for(app, "off")
    assert isinstance(lifespan, LifespanOff)
    await lifespan.startup()
    await lifespan.shutdown()
    assert not called and not lifespan.should_exit
    assert isinstance(lifespan_for(app, "on"), LifespanOn)
