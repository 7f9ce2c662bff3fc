"""Redis connections, configured in one place from :class:`~bridge.settings.Settings`."""

from __future__ import annotations

from redis import Redis

from bridge.settings import Settings


def redis_from_settings(settings: Settings, *, decode_responses: bool = False) -> Redis:
    """A Redis client with short timeouts, so an unreachable Redis answers in
    ``BRIDGE_REDIS_TIMEOUT`` seconds instead of holding the provider's request."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
        decode_responses=decode_responses,
    )
