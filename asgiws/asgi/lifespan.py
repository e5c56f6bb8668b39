"""ASGI lifespan: `lifespan.startup` / `lifespan.shutdown` with the app.

The server's loaded app (`ServerState.app`) runs once, in its own task, with
a `lifespan` scope whose `state` dict is the server's `lifespan_state`; every
http/websocket scope gets a shallow copy of it.

- `--lifespan auto`: an app that raises before completing startup is taken
  not to support lifespan; that is logged at info and the server carries on.
- `--lifespan on`: the same is an error; `should_exit` becomes True and
  `error` says why, so the server exits non-zero.
- `lifespan.startup.failed` / `lifespan.shutdown.failed` are failures in
  either mode; their `message` is logged.
- `--lifespan off`: `LifespanOff`, which does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from asgiws.types import Message, ServerState

if TYPE_CHECKING:
    from asgiws.config import Config

logger = logging.getLogger("asgiws.error")

_SEND_TYPES = (
    "lifespan.startup.complete",
    "lifespan.startup.failed",
    "lifespan.shutdown.complete",
    "lifespan.shutdown.failed",
)


class LifespanOn:
    def __init__(self, config: Config, server_state: ServerState) -> None:
        self.config = config
        self.app = server_state.app
        self.state = server_state.lifespan_state
        self.should_exit = False
        self.error: str | None = None
        """Why startup or shutdown failed, for the server's exit message."""
        self.startup_failed = False
        self.shutdown_failed = False
        self._app_failed = False  # the app raised (or returned) outside a phase reply
        self._receive_queue: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        logger.info("Waiting for application startup.")
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self.startup_failed or (self._app_failed and self.config.lifespan == "on"):
            self.should_exit = True
            if self.error is None:
                self.error = "application startup failed"
            logger.error("Application startup failed. Exiting.")
        else:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self._app_failed or self._task is None:
            # The app does not speak lifespan (or already ended): nothing to tell it.
            return
        logger.info("Waiting for application shutdown.")
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        if self.shutdown_failed or (self._app_failed and self.config.lifespan == "on"):
            self.should_exit = True
            if self.error is None:
                self.error = "application shutdown failed"
            logger.error("Application shutdown failed.")
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            self._app_failed = True
            if self.startup_failed or self.shutdown_failed:
                return  # the app reported the failure itself; it may raise after that
            if self.config.lifespan == "auto" and not self._startup_done.is_set():
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
                logger.debug("The lifespan call raised:", exc_info=exc)
            else:
                self.error = f"exception in 'lifespan' protocol: {exc!r}"
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
        finally:
            # Whatever happened, nobody waits forever for a reply that will not come.
            self._startup_done.set()
            self._shutdown_done.set()

    async def receive(self) -> Message:
        return await self._receive_queue.get()

    async def send(self, message: Message) -> None:
        message_type = message.get("type")
        if message_type not in _SEND_TYPES:
            raise RuntimeError(f"Unexpected ASGI lifespan message {message_type!r}")
        startup = message_type.startswith("lifespan.startup.")
        if startup and (self._startup_done.is_set() or self._shutdown_done.is_set()):
            raise RuntimeError(f"{message_type!r} sent after startup already ended")
        if not startup and (not self._startup_done.is_set() or self._shutdown_done.is_set()):
            raise RuntimeError(f"{message_type!r} sent out of order")
        if message_type.endswith(".failed"):
            text = message.get("message", "")
            if startup:
                self.startup_failed = True
            else:
                self.shutdown_failed = True
            phase = "startup" if startup else "shutdown"
            self.error = f"application {phase} failed: {text}" if text else None
            if text:
                logger.error(text)
        if startup:
            self._startup_done.set()
        else:
            self._shutdown_done.set()


class LifespanOff:
    """`--lifespan off`: the same face, doing nothing."""

    def __init__(self, config: Config, server_state: ServerState) -> None:
        self.should_exit = False
        self.error: str | None = None

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def make_lifespan(config: Config, server_state: ServerState) -> LifespanOn | LifespanOff:
    lifespan = LifespanOff if config.lifespan == "off" else LifespanOn
    return lifespan(config, server_state)
