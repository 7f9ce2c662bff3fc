"""The worker side of the inbox: claim events with a lease, complete or hand them back.

A reliable queue. A drain job moves a chunk of events from ``INBOX`` into its own
claim list (``inbox:claim:<id>``) and records a lease deadline in ``INBOX_CLAIMS``, in
one script. Completing the claim appends the chunk's calls to the outbox (and its
dead letters to the store) *and* deletes the claim in one script, so a chunk is either
still claimed or fully in the outbox: never both (no double append), never neither
(nothing lost). If the worker dies, the lease expires and :meth:`Inbox.recover` puts
the events back at the head of the inbox for another worker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis

from bridge import keys, metrics
from bridge.delivery.deadletter import DeadLetter, reason_slug

CLAIM_LUA = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return {} end
redis.call('LTRIM', KEYS[1], #items, -1)
for s = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(items, s, math.min(s + 999, #items)))
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return items
"""

# KEYS: claims, claim list, outbox, outbox since, metrics, dlq, dlq index
# ARGV: claim id, now, #items, #dead, buffered field, items..., then per dead entry:
#       id, json, at, metric field, amount
COMPLETE_LUA = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
local n = tonumber(ARGV[3])
local d = tonumber(ARGV[4])
if n > 0 then
  for s = 6, 5 + n, 1000 do
    redis.call('RPUSH', KEYS[3], unpack(ARGV, s, math.min(s + 999, 5 + n)))
  end
  redis.call('SET', KEYS[4], ARGV[2], 'NX')
  redis.call('HINCRBY', KEYS[5], ARGV[5], n)
end
local i = 6 + n
for _ = 1, d do
  redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[7], ARGV[i + 2], ARGV[i])
  redis.call('HINCRBY', KEYS[5], ARGV[i + 3], tonumber(ARGV[i + 4]))
  i = i + 5
end
return 1
"""

# KEYS: inbox, claims, claim prefix is ARGV[1]; ARGV[2]: now ('' = release ARGV[3:] ids)
RELEASE_LUA = """
local ids
if ARGV[2] ~= '' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, 100)
else
  ids = {unpack(ARGV, 3)}
end
local moved = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local items = redis.call('LRANGE', key, 0, -1)
  for j = #items, 1, -1 do
    redis.call('LPUSH', KEYS[1], items[j])
  end
  moved = moved + #items
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[2], id)
end
return moved
"""


@dataclass
class Claim:
    """Events one drain job holds under a lease."""

    id: str
    events: list[bytes]


@dataclass
class Inbox:
    """Claim, complete, release and recover inbox events."""

    redis: Redis

    def __post_init__(self) -> None:
        self._claim = self.redis.register_script(CLAIM_LUA)
        self._complete = self.redis.register_script(COMPLETE_LUA)
        self._release = self.redis.register_script(RELEASE_LUA)

    def __len__(self) -> int:
        return int(self.redis.llen(keys.INBOX))

    def claim(self, count: int, lease: float) -> Claim | None:
        claim_id = uuid.uuid4().hex
        events = self._claim(
            keys=[keys.INBOX, keys.INBOX_CLAIMS, keys.inbox_claim(claim_id)],
            args=[count, claim_id, repr(time.time() + lease)],
        )
        return Claim(claim_id, list(events)) if events else None

    def complete(self, claim: Claim, items: Sequence[bytes], dead: Sequence[DeadLetter]) -> bool:
        """Append ``items`` to the outbox and store ``dead`` iff the claim is still ours.

        False means the lease expired and the events went back to the inbox (another
        worker will map them again); nothing was appended, so nothing is doubled.
        """
        args: list[bytes | str | int | float] = [
            claim.id,
            repr(time.time()),
            len(items),
            len(dead),
            metrics.CALLS_BUFFERED.field(),
            *items,
        ]
        for entry in dead:
            if entry.kind == "calls":
                field = metrics.CALLS_DEAD_LETTERED.field(reason=reason_slug(entry.reason))
                amount = len(entry.calls)
            else:
                field = metrics.EVENTS_DEAD_LETTERED.field(reason=reason_slug(entry.reason))
                amount = 1
            args += [entry.id, entry.to_json(), repr(entry.at), field, amount]
        done = self._complete(
            keys=[
                keys.INBOX_CLAIMS,
                keys.inbox_claim(claim.id),
                keys.OUTBOX,
                keys.OUTBOX_SINCE,
                keys.METRICS,
                keys.DLQ,
                keys.DLQ_INDEX,
            ],
            args=args,
        )
        return bool(done)

    def release(self, claim: Claim) -> int:
        """Hand a claim's events back to the head of the inbox (SIGTERM, errors)."""
        return int(
            self._release(
                keys=[keys.INBOX, keys.INBOX_CLAIMS],
                args=[keys.INBOX_CLAIM_PREFIX, "", claim.id],
            )
        )

    def recover(self, now: float | None = None) -> int:
        """Return the events of expired claims (dead workers) to the inbox."""
        now = time.time() if now is None else now
        return int(
            self._release(
                keys=[keys.INBOX, keys.INBOX_CLAIMS], args=[keys.INBOX_CLAIM_PREFIX, repr(now)]
            )
        )
