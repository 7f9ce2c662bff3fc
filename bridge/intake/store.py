"""Make a verified event durable and deduplicated in one atomic Redis call.

One Lua script does, atomically: look the event id's digest up in the dedup buckets
(:mod:`bridge.dedup`); if it is new, add it to the current bucket, ``RPUSH`` the
envelope to the inbox and count it; else count a duplicate. For a
provider that does not sign its event id, the event's signed digest is a second dedup
key: an event whose digest was seen is a duplicate whatever its id. Because it is
one script, two concurrent deliveries of the same event cannot both be accepted, and a
remembered id never exists without its event (no "key set but enqueue failed" window). It
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

from bridge import dedup, keys, metrics
from bridge.drain import enqueue_drain
from bridge.envelope import Envelope
from bridge.errors import StoreUnavailable
from bridge.log import get_logger
from bridge.providers import VerifiedEvent

log = get_logger("bridge.intake")

# KEYS: inbox, kick marker, metrics, legacy id key, legacy signed key (the id key again
# when there is no signed digest), dedup meta hash. ARGV: shard key prefix, envelope,
# kick TTL, accepted field, duplicate field, id digest, signed digest ('' when none),
# current bucket, oldest bucket, current bucket's expiry (Unix s), ids per shard, most
# shards. The layout is bridge.dedup's, and so are the helpers (bridge.dedup.LUA_TIMED,
# which finds the meta hash from the prefix: KEYS[6] is declared, not read); the legacy
# keys are the one before it, checked
# until they expire. Under maxmemory + noeviction Redis refuses the script's first write
# and then lets it finish: an OOM leaves nothing half-written.
ACCEPT_LUA = (
    dedup.LUA_TIMED
    + """
local s = timed(ARGV[1], tonumber(ARGV[8]), tonumber(ARGV[9]))
local id, signed = ARGV[6], ARGV[7]
if redis.call('EXISTS', KEYS[4]) == 1 or tget(s, id)
    or (signed ~= '' and (redis.call('EXISTS', KEYS[5]) == 1 or tget(s, signed))) then
  redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
  return 0
end
local digests = {id}
if signed ~= '' then
  digests[2] = signed
end
local n = tgrow(s, #digests, tonumber(ARGV[11]), tonumber(ARGV[12]))
for _, digest in ipairs(digests) do
  tput(s, n, digest, '', ARGV[10])
end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return 2
end
return 1
"""
)

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
    #: BRIDGE_REPLICAS_ACK: replicas that must hold an event before it is acknowledged.
    replicas_ack: int = 0
    #: BRIDGE_REPLICAS_ACK_TIMEOUT: seconds ``WAIT`` may take.
    replicas_ack_timeout: float = 1.0

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
        legacy = keys.dedup(source, event.id)
        window = dedup.window(self.dedup_ttl, now)
        script_keys = (
            keys.INBOX,
            keys.INBOX_KICK,
            keys.METRICS,
            legacy,
            keys.dedup_signed(source, event.signed_digest) if event.signed_digest else legacy,
            keys.DEDUP_META,
        )
        args: tuple[EncodableT, ...] = (
            *script_keys,
            keys.DEDUP_SHARD_PREFIX,
            envelope,
            keys.INBOX_KICK_TTL,
            counters[0] if counters else metrics.WEBHOOKS_ACCEPTED.field(source=source),
            counters[1] if counters else metrics.WEBHOOKS_DUPLICATE.field(source=source),
            dedup.id_digest(source, event.id),
            dedup.signed_digest(source, event.signed_digest) if event.signed_digest else b"",
            window.current,
            window.oldest,
            window.expire_at,
            dedup.SHARD_TARGET,
            dedup.MAX_SHARDS,
        )
        try:
            result = self._run(len(script_keys), args)
            if self.replicas_ack:
                self._replicated()
        except REDIS_ERRORS as exc:
            raise unavailable(exc) from exc
        if result == 0:
            return Outcome.DUPLICATE
        if result == 2:
            self.kick()
        return Outcome.ACCEPTED

    def _replicated(self) -> None:
        """``WAIT`` until ``replicas_ack`` replicas have this connection's writes, else
        raise StoreUnavailable (503: the provider retries).

        Replication is asynchronous: without this, a failover can lose an event that was
        acknowledged. A duplicate waits too: the write it made (its counter) follows the
        first delivery's event in the replication stream, so once it is replicated the
        event is too, and "duplicate" is as safe an acknowledgement as "accepted". An
        event that times out here stays in the primary; the provider's retry then finds
        it ("duplicate") once it is replicated, or, if a failover lost it, is accepted
        again by the new primary: lost nowhere, acknowledged once.
        """
        timeout_ms = max(1, round(self.replicas_ack_timeout * 1000))
        acked = int(self._client.wait(self.replicas_ack, timeout_ms))
        if acked < self.replicas_ack:
            raise StoreUnavailable(
                f"event reached {acked} of {self.replicas_ack} replicas in "
                f"{self.replicas_ack_timeout:g} s",
                reason="store_not_replicated",
            )

    def _run(self, numkeys: int, args: tuple[EncodableT, ...]) -> object:
        """EVALSHA the accept script; once more on a fresh connection if the kept one
        was dropped (a Redis restart or an idle timeout closes it, and the next
        command would otherwise be the first webhook's 503). Safe to repeat: if the
        first call did run, the second finds the dedup key and answers duplicate."""
        try:
            return self._evalsha(numkeys, args)
        except RedisConnectionError:
            # A fresh connection from the pool: the pool connects it afresh, and with
            # REDIS_SENTINELS that means asking the Sentinels for the primary. (redis-py
            # reconnects a kept connection to the address it had: the dead primary.)
            self._drop_client()
            return self._evalsha(numkeys, args)

    def _drop_client(self) -> None:
        """Forget this thread's kept connection (the next command takes a new one)."""
        client: Redis | None = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                client.close()

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
