"""Real-time delivery: the broker (in-process or Redis), the WebSocket hub, the envelope.

Publishers call `app.realtime.publish.publish_call_message`; the pipeline step lives in
`app.realtime.steps`; sockets are served by `app.api.ws` through `app.realtime.hub`.
"""

from __future__ import annotations

from app.config import Settings
from app.realtime.broker import Broker, BrokerUnavailable, CursorGone
from app.realtime.memory import MemoryBroker
from app.realtime.redis import RedisBroker


def create_broker(settings: Settings) -> Broker:
    """In-process when REDIS_URL is unset (one process), Redis streams otherwise."""
    if settings.redis_url:
        return RedisBroker(
            settings.redis_url, settings.redis_prefix, settings.realtime_retention_seconds
        )
    return MemoryBroker(settings.realtime_retention_seconds)


__all__ = [
    "Broker",
    "BrokerUnavailable",
    "CursorGone",
    "MemoryBroker",
    "RedisBroker",
    "create_broker",
]
