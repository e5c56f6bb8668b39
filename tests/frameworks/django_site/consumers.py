"""Channels consumers: an echo that reports the user AuthMiddlewareStack
resolved, and one that refuses anonymous users before accept (HTTP 403)."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from tests.frameworks.common import (
    FRAMEWORK_HEADER,
    DisconnectRecord,
    choose_subprotocol,
    close_command,
)

NAME = "django-channels"
last_disconnect = DisconnectRecord()


# Channels ships no type hints: its consumer base class is Any to mypy.
class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        user = self.scope["user"]
        await self.accept(
            subprotocol=choose_subprotocol(self.scope["subprotocols"]),
            headers=[
                (FRAMEWORK_HEADER.encode(), NAME.encode()),
                (b"x-user", b"anonymous" if user.is_anonymous else user.get_username().encode()),
            ],
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send(bytes_data=bytes_data)
        elif (command := close_command(text_data)) is not None:
            await self.close(code=command[0], reason=command[1])
        else:
            await self.send(text_data=text_data)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        last_disconnect.record(message["code"], message.get("reason"))
        await super().websocket_disconnect(message)


class MembersConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        if self.scope["user"].is_anonymous:
            await self.close()  # before accept: the server answers 403
            return
        await self.accept()
