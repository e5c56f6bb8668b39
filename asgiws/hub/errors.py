"""What the hub raises."""

from __future__ import annotations

__all__ = ["HubError", "HubUnavailable", "SlowSubscriber"]


class HubError(Exception):
    """Base class of the hub's own errors."""


class HubUnavailable(HubError):
    """The hub's engine (Redis) cannot be reached: `publish()` did not
    publish the message.  Raised at once while the hub is reconnecting; the
    application decides whether to retry, answer 503, or drop the message."""


class SlowSubscriber(HubError):
    """Raised from `async for message in subscription` under the `close`
    policy when the subscriber fell more than `max_queue` messages behind."""
