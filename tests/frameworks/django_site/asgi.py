"""The ASGI entry point: Django's HTTP views and the Channels consumers behind
AuthMiddlewareStack, on one port."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.frameworks.django_site.settings")
# Django must be set up before the consumers (and auth) are imported.
django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from tests.frameworks.django_site.consumers import EchoConsumer, MembersConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": AuthMiddlewareStack(
            URLRouter(
                [
                    path("ws", EchoConsumer.as_asgi()),
                    path("ws/denied", MembersConsumer.as_asgi()),
                ]
            )
        ),
    }
)
