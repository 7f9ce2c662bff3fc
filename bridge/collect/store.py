"""Make collected calls durable in one atomic Redis call: rate limit, dedup, outbox.

One Lua script, one round trip per request: it counts the request against the client
IP's and the write key's windows (answering with the seconds left when either is over
its limit, storing nothing), then for each call ``SET dedup-key NX EX ttl`` on the
client's own ``messageId`` and ``RPUSH``es the new ones to the same outbox that mapped
webhook calls go to (:mod:`bridge.delivery.outbox`), so they are batched, retried and
dead-lettered exactly like those. 2xx is answered only after the script returned.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import NoScriptError

from bridge import keys, metrics
from bridge.errors import StoreUnavailable
from bridge.intake.store import REDIS_DOWN

__all__ = [
    "COLLECT_ACCEPTED",
    "COLLECT_DROPPED",
    "COLLECT_DUPLICATE",
    "COLLECT_REJECTED",
    "CallStore",
    "Stored",
]

COLLECT_ACCEPTED = metrics.Counter(
    "bridge_collect_calls_accepted_total",
    "First-party calls made durable, by source.",
    ("source",),
)
COLLECT_DUPLICATE = metrics.Counter(
    "bridge_collect_calls_duplicate_total",
    "First-party calls dropped as repeats of a messageId within BRIDGE_DEDUP_TTL.",
    ("source",),
)
COLLECT_REJECTED = metrics.Counter(
    "bridge_collect_rejected_total",
    "First-party requests or calls refused, by source and reason.",
    ("source", "reason"),
)
COLLECT_DROPPED = metrics.Counter(
    "bridge_collect_dropped_total",
    "Calls or members dropped on purpose (rules, consent, oversized members), by reason.",
    ("source", "reason"),
)
for _counter in (COLLECT_ACCEPTED, COLLECT_DUPLICATE, COLLECT_REJECTED, COLLECT_DROPPED):
    if _counter not in metrics.COUNTERS:
        metrics.COUNTERS.append(_counter)

ACCEPT_CALLS_LUA = """
local function over(key, limit, window)
  if limit == 0 then return false end
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, window) end
  if n > limit then
    local left = redis.call('TTL', key)
    if left < 1 then left = 1 end
    return left
  end
  return false
end
local window = tonumber(ARGV[5])
local wait = over(KEYS[4], tonumber(ARGV[3]), window)
if not wait then wait = over(KEYS[5], tonumber(ARGV[4]), window) end
if wait then return {-1, wait} end
local accepted, duplicate = 0, 0
local i = 9
while i < #ARGV do
  if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ARGV[2]) then
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    accepted = accepted + 1
  else
    duplicate = duplicate + 1
  end
  i = i + 2
end
if accepted > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'NX')
  redis.call('HINCRBY', KEYS[3], ARGV[6], accepted)
  redis.call('HINCRBY', KEYS[3], ARGV[8], accepted)
end
if duplicate > 0 then redis.call('HINCRBY', KEYS[3], ARGV[7], duplicate) end
return {accepted, duplicate}
"""


def rate_key(kind: str, source: str, who: str) -> str:
    """Key counting one client's (``ip``) or write key's (``key``) requests in a window."""
    return f"{keys.PREFIX}:collect:rate:{kind}:{source}:{who}"


@dataclass(frozen=True)
class Stored:
    """What the script did: calls stored, duplicates skipped, or seconds to wait."""

    accepted: int = 0
    duplicate: int = 0
    retry_after: int | None = None


@dataclass
class CallStore:
    """The collection side of the outbox."""

    redis: Redis
    dedup_ttl: int

    def __post_init__(self) -> None:
        # Loaded on first use, so the app starts (and answers 503) without Redis.
        self._sha = ""

    def store(
        self,
        source: str,
        items: Sequence[tuple[str, bytes]],
        *,
        ip: str,
        key: str,
        per_ip: int,
        per_key: int,
        window: int,
        now: float,
        dedup_ttl: int | None = None,
    ) -> Stored:
        """Store ``items`` (messageId, outbox item) unless a rate limit is over."""
        argv: list[str | int | bytes] = [
            repr(now),
            dedup_ttl or self.dedup_ttl,
            per_ip,
            per_key,
            window,
            COLLECT_ACCEPTED.field(source=source),
            COLLECT_DUPLICATE.field(source=source),
            metrics.CALLS_BUFFERED.field(),
        ]
        for message_id, item in items:
            argv.extend((keys.dedup(source, message_id), item))
        redis_keys = [
            keys.OUTBOX,
            keys.OUTBOX_SINCE,
            keys.METRICS,
            rate_key("ip", source, ip),
            # The key itself never becomes part of a Redis key name: a digest does.
            rate_key("key", source, _digest(key)),
        ]
        try:
            try:
                if not self._sha:
                    raise NoScriptError("not loaded")
                result = self.redis.evalsha(self._sha, len(redis_keys), *redis_keys, *argv)
            except NoScriptError:
                self._sha = self.redis.script_load(ACCEPT_CALLS_LUA)
                result = self.redis.evalsha(self._sha, len(redis_keys), *redis_keys, *argv)
        except REDIS_DOWN as exc:
            raise StoreUnavailable(f"Redis unreachable: {type(exc).__name__}") from exc
        first, second = int(result[0]), int(result[1])
        if first < 0:
            return Stored(retry_after=second)
        return Stored(accepted=first, duplicate=second)

    def count(self, counter: metrics.Counter, amount: int = 1, **labels: str) -> None:
        """Best-effort count (a Redis outage must not turn a 4xx into a 503)."""
        with contextlib.suppress(*REDIS_DOWN):
            self.redis.hincrby(keys.METRICS, counter.field(**labels), amount)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]
