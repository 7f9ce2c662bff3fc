"""Make a verified event durable and deduplicated in one atomic Redis call.

One Lua script does, atomically: ``SET dedup-key NX EX ttl``; if the key is new,
``RPUSH`` the envelope to the inbox and count it; else count a duplicate. Because it is
one script, two concurrent deliveries of the same event cannot both be accepted, and a
dedup key never exists without its event (no "key set but enqueue failed" window). It
costs one round trip, which is what lets intake answer in well under a millisecond.

The script also sets the inbox "kick" marker when it is absent; the caller that sees
``KICKED`` enqueues one RQ drain job, so RQ work is created per burst, not per event.
"""

from __future__ import annotations

import contextlib
import enum
import time
from dataclasses import dataclass

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue

from bridge import keys, metrics
from bridge.drain import enqueue_drain
from bridge.envelope import Envelope
from bridge.errors import StoreUnavailable
from bridge.log import get_logger
from bridge.providers import VerifiedEvent

log = get_logger("bridge.intake")

ACCEPT_LUA = """
if redis.call('SET', KEYS[1], ARGV[6], 'NX', 'EX', ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
  if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then
    return 2
  end
  return 1
end
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
return 0
"""

#: Errors that mean "Redis is not there right now": answer 503 so the provider retries.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class Outcome(enum.Enum):
    """What happened to a verified event."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass
class EventStore:
    """The intake side of the inbox."""

    redis: Redis
    dedup_ttl: int

    def __post_init__(self) -> None:
        self._accept: Script = self.redis.register_script(ACCEPT_LUA)
        self._queue = Queue(keys.QUEUE, connection=self.redis)
        self._dedicated: Redis | None = None

    @property
    def _client(self) -> Redis:
        """One connection kept for the webhook path (guarded by redis-py's lock).

        Sync gunicorn workers serve one request at a time; skipping the pool's checkout
        and liveness probe on every command is measurable at thousands of webhooks per
        second. Created on first use, so the app starts (and answers 503) without Redis.
        """
        if self._dedicated is None:
            self._dedicated = Redis(
                connection_pool=self.redis.connection_pool, single_connection_client=True
            )
        return self._dedicated

    def accept(
        self, source: str, event: VerifiedEvent, *, counters: tuple[str, str] | None = None
    ) -> Outcome:
        """Store ``event`` unless it was seen before; raise StoreUnavailable if Redis is down.

        ``counters``: the metric fields (accepted, duplicate) to count in the same script
        instead of the webhook counters (backfill and reconcile feed through here too)."""
        now = time.time()
        envelope = Envelope.encode(
            source=source,
            id=event.id,
            type=event.type,
            time=event.time,
            received_at=now,
            raw=event.raw,
        )
        args = (
            keys.dedup(source, event.id),
            keys.INBOX,
            keys.INBOX_KICK,
            keys.METRICS,
            self.dedup_ttl,
            envelope,
            keys.INBOX_KICK_TTL,
            counters[0] if counters else metrics.WEBHOOKS_ACCEPTED.field(source=source),
            counters[1] if counters else metrics.WEBHOOKS_DUPLICATE.field(source=source),
            repr(now),
        )
        try:
            # EVALSHA directly: redis-py's Script.__call__ wrapper costs ~12 µs of CPU
            # per call, a measurable share of a webhook's total.
            try:
                result = self._client.evalsha(self._accept.sha, 4, *args)
            except NoScriptError:  # a restarted or different Redis: load it again
                self._accept.sha = self._client.script_load(ACCEPT_LUA)
                result = self._client.evalsha(self._accept.sha, 4, *args)
        except REDIS_DOWN as exc:
            raise StoreUnavailable(f"Redis unreachable: {type(exc).__name__}") from exc
        if result == 0:
            return Outcome.DUPLICATE
        if result == 2:
            self.kick()
        return Outcome.ACCEPTED

    def kick(self) -> None:
        """Enqueue a drain job. The event is already durable: if this fails, the marker
        expires and the next webhook or a worker's sweep kicks again."""
        try:
            enqueue_drain(self._queue)
        except REDIS_DOWN as exc:
            log.warning("drain_kick_failed", error=type(exc).__name__)

    def count(self, counter: metrics.Counter, source: str, **labels: str) -> None:
        """Best-effort count of a request that never reached the script (rejected or
        ignored); a Redis outage must not turn a 4xx into a 503."""
        with contextlib.suppress(*REDIS_DOWN):
            self._client.hincrby(keys.METRICS, counter.field(source=source, **labels), 1)
