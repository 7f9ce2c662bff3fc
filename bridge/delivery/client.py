"""``Client``: send your own server-side Segment calls through the durable path.

    from bridge.delivery import Client

    client = Client()                       # settings from the environment
    client.on("flushed", lambda ev: print(ev.calls, "calls sent"))
    client.track(user_id="u1", event="Order Completed", properties={"revenue": 9.5})
    client.flush()                          # optional: workers send it anyway
    client.close()

Unlike the in-memory ``segment-analytics-python`` client, a call is durable in Redis
when the method returns (one round trip); any ``rq worker`` running
:class:`~bridge.delivery.worker.BridgeWorker` delivers it even if this process exits
or crashes right after. ``flush()`` sends what is buffered now from this process.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import httpx
from redis import Redis

from bridge import timefmt
from bridge.connections import redis_from_settings
from bridge.delivery import context as context_helpers
from bridge.delivery import deadletter
from bridge.delivery.flusher import Flusher, FlushStats
from bridge.delivery.observers import Callback, EventName, Observers
from bridge.delivery.outbox import MAX_CALL_BYTES, Outbox, encode_item
from bridge.delivery.sender import Sender
from bridge.errors import MappingError
from bridge.settings import Settings

try:
    from importlib.metadata import version as _pkg_version

    LIBRARY_VERSION = _pkg_version("bridge")
except Exception:  # pragma: no cover - not installed
    LIBRARY_VERSION = "0"

LIBRARY = {"name": "bridge", "version": LIBRARY_VERSION}


class InvalidCall(ValueError):
    """A call the Segment spec does not allow (e.g. neither userId nor anonymousId)."""


def _iso(value: datetime | str | None) -> str:
    """A caller's text timestamp is passed through as given; anything else is formatted."""
    return value if isinstance(value, str) else timefmt.iso8601(value)


class Client:
    """A durable, batching Segment client whose buffer is the bridge outbox."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: Redis | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._own_redis = redis is None
        self.redis = redis or redis_from_settings(self.settings)
        self.outbox = Outbox(self.redis)
        self.dead_letters = deadletter.DeadLetters(self.redis)
        self.observers = Observers()
        key = self.settings.segment_write_key
        self.sender = Sender(
            self.settings.collector_batch_url,
            key.get_secret_value() if key else None,
            timeout=self.settings.http_timeout,
            gzip_body=self.settings.gzip,
            transport=transport,
        )
        self.flusher = Flusher(self.redis, self.settings, self.sender, self.observers)

    # -- observers ---------------------------------------------------------------------
    def on(self, event: EventName, callback: Callback) -> Any:
        """Subscribe to ``flushing``/``flushed``/``err``; returns an unsubscribe function."""
        return self.observers.on(event, callback)

    # -- the Segment spec calls --------------------------------------------------------
    def identify(
        self, user_id: str | None = None, traits: dict[str, Any] | None = None, **kw: Any
    ) -> str:
        return self._enqueue("identify", user_id=user_id, traits=traits or {}, **kw)

    def track(
        self,
        user_id: str | None = None,
        event: str | None = None,
        properties: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        if not event:
            raise InvalidCall("track needs an event name")
        return self._enqueue(
            "track", user_id=user_id, event=event, properties=properties or {}, **kw
        )

    def group(
        self,
        user_id: str | None = None,
        group_id: str | None = None,
        traits: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        if not group_id:
            raise InvalidCall("group needs a group_id")
        return self._enqueue("group", user_id=user_id, groupId=group_id, traits=traits or {}, **kw)

    def page(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        extra: dict[str, Any] = {k: v for k, v in (("category", category), ("name", name)) if v}
        return self._enqueue("page", user_id=user_id, properties=properties or {}, **extra, **kw)

    def screen(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        """A mobile screen view (the ``page`` of apps)."""
        extra: dict[str, Any] = {k: v for k, v in (("category", category), ("name", name)) if v}
        return self._enqueue("screen", user_id=user_id, properties=properties or {}, **extra, **kw)

    # Context helpers (see bridge.delivery.context): externalIds, consent, the browser's id.
    external_ids = staticmethod(context_helpers.external_ids)
    consent = staticmethod(context_helpers.consent)
    browser_anonymous_id = staticmethod(context_helpers.browser_anonymous_id)

    def alias(self, previous_id: str, user_id: str, **kw: Any) -> str:
        if not previous_id:
            raise InvalidCall("alias needs a previous_id")
        return self._enqueue("alias", user_id=user_id, previousId=previous_id, **kw)

    def _enqueue(
        self,
        kind: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        context: dict[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        integrations: dict[str, Any] | None = None,
        message_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Validate, complete and append one call durably; returns its messageId."""
        if not user_id and not anonymous_id:
            raise InvalidCall(f"{kind} needs a user_id or an anonymous_id")
        call: dict[str, Any] = {"type": kind, **fields}
        if user_id:
            call["userId"] = str(user_id)
        if anonymous_id:
            call["anonymousId"] = str(anonymous_id)
        call["messageId"] = message_id or str(uuid.uuid4())
        call["timestamp"] = _iso(timestamp)
        call["context"] = {**(context or {}), "library": LIBRARY}
        if integrations:
            call["integrations"] = integrations
        try:
            item = encode_item(call, time.time())
        except MappingError as exc:  # an integer >= 2**64, nesting deeper than 254, ...
            raise InvalidCall(str(exc)) from None
        if item is None:
            self.dead_letters.add(
                deadletter.calls_entry([call], f"call_too_large: over {MAX_CALL_BYTES} bytes")
            )
        else:
            self.outbox.append([item])
        return str(call["messageId"])

    # -- sending -----------------------------------------------------------------------
    def flush(self, max_seconds: float = 30.0) -> FlushStats:
        """Send everything buffered now (not only full batches). Batches that fail stay
        durable and are retried by the workers (or by a later ``flush``)."""
        return self.flusher.flush(force=True, max_seconds=max_seconds)

    def close(self) -> None:
        """Flush and release connections. Unsent calls remain durable in Redis."""
        try:
            self.flush()
        finally:
            self.sender.close()
            if self._own_redis:
                self.redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
