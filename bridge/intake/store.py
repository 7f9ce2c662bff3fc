"""Make a verified event durable and deduplicated in one atomic Redis call.

One Lua script does, atomically: ``SET dedup-key NX EX ttl``; if the key is new,
``RPUSH`` the envelope to the inbox and count it; else count a duplicate. For a
provider that does not sign its event id, the event's signed digest is a second dedup
key: an event whose digest was seen is a duplicate whatever its id. Because it is
one script, two concurrent deliveries of the same event cannot both be accepted, and a
dedup key never exists without its event (no "key set but enqueue failed" window). It
costs one round trip, which is what lets intake answer in well under a millisecond.

The script also sets the inbox "kick" marker when it is absent; the caller that sees
``KICKED`` enqueues one RQ drain job, so RQ work is created per burst, not per event.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from dataclasses import dataclass

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT
from rq import Queue

from bridge import keys, metrics
from bridge.drain import enqueue_drain
from bridge.envelope import Envelope
from bridge.errors import StoreUnavailable
from bridge.log import get_logger
from bridge.providers import VerifiedEvent

log = get_logger("bridge.intake")

# KEYS: dedup id, inbox, kick marker, metrics [, dedup signed digest].
# Under maxmemory + noeviction Redis refuses the script's first write and then lets it
# finish: an OOM leaves nothing half-written.
ACCEPT_LUA = """
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
  return 0
end
if redis.call('SET', KEYS[1], ARGV[6], 'NX', 'EX', ARGV[1]) then
  if KEYS[5] then
    redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[1])
  end
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

#: Any error from Redis, including its refusals (``OOM`` under maxmemory, ``READONLY``
#: on a replica, ``MISCONF`` after a failed save): the event is not durable, so 503.
REDIS_ERRORS = (RedisError, OSError)


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The 503 for a Redis error, with a reason an operator can act on."""
    if isinstance(exc, REDIS_DOWN):
        return StoreUnavailable(f"Redis unreachable: {type(exc).__name__}")
    text = str(exc)
    if isinstance(exc, OutOfMemoryError) or "OOM" in text:
        return StoreUnavailable(
            "Redis is full (used memory over maxmemory) and refuses writes", reason="store_full"
        )
    # READONLY, MISCONF, ...: Redis answers but will not take the event. Its error
    # names the cause and carries no secret.
    return StoreUnavailable(f"Redis refuses writes: {text[:200]}", reason="store_refusing_writes")


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
        self._local = threading.local()

    @property
    def _client(self) -> Redis:
        """A connection kept for the webhook path, one per thread.

        Skipping the pool's checkout and liveness probe on every command is measurable
        at thousands of webhooks per second. One per thread, not per process: gthread
        workers serve ``threads`` requests at once, and one shared connection would
        queue their round trips behind its lock. Created on first use, so the app
        starts (and answers 503) without Redis.
        """
        client: Redis | None = getattr(self._local, "client", None)
        if client is None:
            client = Redis(
                connection_pool=self.redis.connection_pool, single_connection_client=True
            )
            self._local.client = client
        return client

    def accept(
        self, source: str, event: VerifiedEvent, *, counters: tuple[str, str] | None = None
    ) -> Outcome:
        """Store ``event`` unless it was seen before (by id, or by signed digest when
        it has one); raise StoreUnavailable if Redis is down or refuses the write.

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
        dedup_keys = [keys.dedup(source, event.id), keys.INBOX, keys.INBOX_KICK, keys.METRICS]
        if event.signed_digest:
            dedup_keys.append(keys.dedup_signed(source, event.signed_digest))
        args: tuple[EncodableT, ...] = (
            *dedup_keys,
            self.dedup_ttl,
            envelope,
            keys.INBOX_KICK_TTL,
            counters[0] if counters else metrics.WEBHOOKS_ACCEPTED.field(source=source),
            counters[1] if counters else metrics.WEBHOOKS_DUPLICATE.field(source=source),
            repr(now),
        )
        try:
            result = self._run(len(dedup_keys), args)
        except REDIS_ERRORS as exc:
            raise unavailable(exc) from exc
        if result == 0:
            return Outcome.DUPLICATE
        if result == 2:
            self.kick()
        return Outcome.ACCEPTED

    def _run(self, numkeys: int, args: tuple[EncodableT, ...]) -> object:
        """EVALSHA the accept script; once more on a fresh connection if the kept one
        was dropped (a Redis restart or an idle timeout closes it, and the next
        command would otherwise be the first webhook's 503). Safe to repeat: if the
        first call did run, the second finds the dedup key and answers duplicate."""
        try:
            return self._evalsha(numkeys, args)
        except RedisConnectionError:
            # redis-py has closed the connection; this command opens a new one.
            return self._evalsha(numkeys, args)

    def _evalsha(self, numkeys: int, args: tuple[EncodableT, ...]) -> object:
        # EVALSHA directly: redis-py's Script.__call__ wrapper costs ~12 µs of CPU per
        # call, a measurable share of a webhook's total.
        try:
            return self._client.evalsha(self._accept.sha, numkeys, *args)
        except NoScriptError:  # a restarted or different Redis: load it again
            self._accept.sha = self._client.script_load(ACCEPT_LUA)
            return self._client.evalsha(self._accept.sha, numkeys, *args)

    def kick(self) -> None:
        """Enqueue a drain job. The event is already durable: if this fails, the marker
        expires and the next webhook or a worker's sweep kicks again."""
        try:
            enqueue_drain(self._queue)
        except REDIS_ERRORS as exc:
            log.warning("drain_kick_failed", error=type(exc).__name__)

    def count(self, counter: metrics.Counter, source: str, **labels: str) -> None:
        """Best-effort count of a request that never reached the script (rejected or
        ignored); a Redis outage or a full Redis must not turn a 4xx into a 5xx."""
        with contextlib.suppress(*REDIS_ERRORS):
            self._client.hincrby(keys.METRICS, counter.field(source=source, **labels), 1)
