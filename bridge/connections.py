"""Redis connections, configured in one place from :class:`~bridge.settings.Settings`.

With ``REDIS_SENTINELS`` set, every client is redis-py's Sentinel-managed client: each
new connection asks the Sentinels for the current primary, and a connection that meets
a demoted primary (``READONLY``) or a dead one is dropped, so the next command reaches
the primary the Sentinels promoted, without restarting the process. ``REDIS_URL`` then
only gives the database number, user name and password.

The ``worker`` process gets the same client through RQ's ``--connection-class``
(:class:`RQRedis`), so the Procfile's ``--url $REDIS_URL`` keeps working either way.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.sentinel import Sentinel

from bridge.errors import ConfigError
from bridge.settings import Settings

R = TypeVar("R", bound=Redis)


def _timeouts(settings: Settings) -> dict[str, Any]:
    # Short timeouts, so an unreachable Redis answers in BRIDGE_REDIS_TIMEOUT seconds
    # instead of holding the provider's request.
    return {
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "health_check_interval": 30,
    }


def redis_from_settings(settings: Settings, *, decode_responses: bool = False) -> Redis:
    """A Redis client for the primary: ``REDIS_URL``'s, or the Sentinels' when
    ``REDIS_SENTINELS`` is set."""
    if settings.redis_sentinels:
        return sentinel_master(settings, Redis, decode_responses=decode_responses)
    return Redis.from_url(
        settings.redis_url, decode_responses=decode_responses, **_timeouts(settings)
    )


def sentinel_master(settings: Settings, redis_class: type[R], **kwargs: Any) -> R:
    """A client of ``redis_class`` whose connections go to the primary the Sentinels
    name for ``REDIS_SENTINEL_MASTER``."""
    url = urlsplit(settings.redis_url)
    db = url.path.strip("/") or "0"
    auth = {
        "username": unquote(url.username) if url.username else None,
        "password": unquote(url.password) if url.password else None,
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        settings.sentinel_addresses,
        # The Sentinels themselves answer within the same bound.
        sentinel_kwargs={
            "socket_timeout": settings.redis_timeout,
            "socket_connect_timeout": settings.redis_timeout,
        },
        db=int(db) if db.isdigit() else 0,
        ssl=url.scheme == "rediss",
        **auth,
        **_timeouts(settings),
    )
    client: R = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.redis_sentinel_master, redis_class=redis_class, **kwargs
    )
    return client


class RQRedis(Redis):
    """``rq worker --connection-class bridge.connections.RQRedis``: RQ builds the
    worker's connection with ``from_url($REDIS_URL)``; this reads bridge's settings
    instead, so that ``REDIS_SENTINELS`` (and the timeouts) apply to workers too."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RQRedis:
        try:
            settings = Settings.from_env(redis_url=url) if url else Settings.from_env()
        except ConfigError:
            # The worker itself reports every problem, one per line, and exits 2
            # (bridge/delivery/worker.py); a traceback from here would hide that.
            return cast(RQRedis, super().from_url(url, **kwargs))
        if settings.redis_sentinels:
            return sentinel_master(settings, cls, **kwargs)
        return cast(RQRedis, super().from_url(settings.redis_url, **kwargs))
