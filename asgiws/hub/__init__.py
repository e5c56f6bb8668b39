"""Publish/subscribe for WebSocket apps: `asgiws.Hub` (see hub.py)."""

from asgiws.hub.errors import HubError, HubUnavailable, SlowSubscriber
from asgiws.hub.hub import Hub, HubStats
from asgiws.hub.subscription import Subscription
from asgiws.hub.wire import MAX_CHANNEL_BYTES, validate_channel

__all__ = [
    "MAX_CHANNEL_BYTES",
    "Hub",
    "HubError",
    "HubStats",
    "HubUnavailable",
    "SlowSubscriber",
    "Subscription",
    "validate_channel",
]
