"""The durable outbox: calls wait in Redis, shared by every worker, until they form a batch.

Layout (names in :mod:`bridge.keys`)::

    OUTBOX        list   "<received_at> <call JSON>"   appended by drain jobs and Client
    OUTBOX_SINCE  string when the oldest waiting call arrived (the flush-interval clock)
    BATCHES       hash   batch id -> the JSON array of its calls (the bytes sent)
    BATCH_META    hash   batch id -> {"calls", "created", "received": [...]}; "<id>:a" attempts
    BATCHES_DUE   zset   batch id -> lease deadline (in flight) or next attempt (retrying)

Taking a batch is one Lua script: it cuts up to ``flush_at`` calls (never more than
:data:`MAX_BATCH_CALLS`, and at most :data:`MAX_BATCH_BYTES`) off the outbox, stores
them as a batch and leases it. Until the batch is acknowledged it stays in
``BATCHES_DUE``: a worker that dies mid-request leaves it there, and once the lease
passes any worker takes it again with the same bytes, hence the same messageIds. A
retry is the same batch with a later score.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis

from bridge import codec, keys, metrics

#: A call serialised larger than this is never sent (Segment's per-call limit).
MAX_CALL_BYTES = 32 * 1024

#: Upper bound of a batch body (Segment's limit is 500 KB); room is left for the
#: ``{"batch": ..., "sentAt": ...}`` wrapper.
MAX_BATCH_BYTES = 500 * 1000 - 100

#: Most calls in one batch, whatever ``BRIDGE_FLUSH_AT`` says: Segment's batch API takes
#: at most 2,500 calls and silently drops the rest of a larger batch (it still answers
#: 200), so no batch is ever cut larger.
MAX_BATCH_CALLS = 2500

TAKE_LUA = """
local n = redis.call('LLEN', KEYS[1])
if n == 0 then return false end
local now = tonumber(ARGV[1])
local flush_at = tonumber(ARGV[3])
if ARGV[2] == '0' and n < flush_at then
  local since = tonumber(redis.call('GET', KEYS[2]) or '0')
  if since and since > 0 and now - since < tonumber(ARGV[4]) then return false end
end
local items = redis.call('LRANGE', KEYS[1], 0, flush_at - 1)
local max = tonumber(ARGV[5])
local size = 1
local calls = {}
local received = {}
for _, item in ipairs(items) do
  local sp = string.find(item, ' ', 1, true)
  local call = string.sub(item, sp + 1)
  if #calls > 0 and size + #call + 1 > max then break end
  size = size + #call + 1
  calls[#calls + 1] = call
  received[#received + 1] = string.sub(item, 1, sp - 1)
end
local k = #calls
redis.call('LTRIM', KEYS[1], k, -1)
if n == k then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[1]) end
local body = '[' .. table.concat(calls, ',') .. ']'
local meta = '{"calls":' .. k .. ',"created":' .. ARGV[1] ..
  ',"received":[' .. table.concat(received, ',') .. ']}'
redis.call('HSET', KEYS[3], ARGV[6], body)
redis.call('HSET', KEYS[4], ARGV[6], meta, ARGV[6] .. ':a', 1)
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6])
return {ARGV[6], body, meta, 1}
"""

TAKE_DUE_LUA = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #ids == 0 then return false end
local id = ids[1]
local body = redis.call('HGET', KEYS[2], id)
if not body then
  redis.call('ZREM', KEYS[1], id)
  return false
end
redis.call('ZADD', KEYS[1], ARGV[2], id)
local attempts = redis.call('HINCRBY', KEYS[3], id .. ':a', 1)
return {id, body, redis.call('HGET', KEYS[3], id), attempts}
"""

ACK_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1], ARGV[1] .. ':a')
return redis.call('HDEL', KEYS[2], ARGV[1])
"""


@dataclass
class Batch:
    """A leased batch: its id, the JSON array of its calls, and bookkeeping."""

    id: str
    calls: bytes
    count: int
    attempts: int
    created: float
    #: When each call was buffered (intake or Client time), for latency metrics.
    received: list[float] = field(default_factory=list, repr=False)

    def message_ids(self) -> list[str]:
        return [str(c.get("messageId")) for c in orjson.loads(self.calls)]


def encode_item(call: dict[str, Any], received_at: float) -> bytes | None:
    """The outbox item for ``call``, or None when the call is over MAX_CALL_BYTES.

    Raises :class:`~bridge.errors.MappingError` when the call cannot be encoded at all
    (see :func:`bridge.codec.dumps`)."""
    data = codec.dumps(call)
    if len(data) > MAX_CALL_BYTES:
        return None
    return f"{received_at!r} ".encode() + data


def encode_items(
    calls: Iterable[dict[str, Any]], received_at: float
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Outbox items for ``calls`` and the calls too large to ever be sent; MappingError
    if one of them cannot be encoded (the caller dead-letters the event whole)."""
    items: list[bytes] = []
    too_large: list[dict[str, Any]] = []
    for call in calls:
        item = encode_item(call, received_at)
        if item is None:
            too_large.append(call)
        else:
            items.append(item)
    return items, too_large


def _batch(raw: Sequence[Any]) -> Batch:
    meta = orjson.loads(raw[2])
    return Batch(
        id=raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0]),
        calls=raw[1],
        count=int(meta["calls"]),
        attempts=int(raw[3]),
        created=float(meta["created"]),
        received=[float(x) for x in meta["received"]],
    )


@dataclass
class Outbox:
    """The shared buffer and its batches, on one Redis."""

    redis: Redis

    def __post_init__(self) -> None:
        self._take = self.redis.register_script(TAKE_LUA)
        self._take_due = self.redis.register_script(TAKE_DUE_LUA)
        self._ack = self.redis.register_script(ACK_LUA)

    def queue_append(self, pipe: Any, items: Sequence[bytes], now: float) -> None:
        """Queue on ``pipe`` the commands appending encoded ``items``."""
        if not items:
            return
        pipe.rpush(keys.OUTBOX, *items)
        pipe.set(keys.OUTBOX_SINCE, repr(now), nx=True)
        pipe.hincrby(keys.METRICS, metrics.CALLS_BUFFERED.field(), len(items))

    def append(self, items: Sequence[bytes]) -> None:
        """Append encoded items (see :func:`encode_items`) in one transaction."""
        pipe = self.redis.pipeline(transaction=True)
        self.queue_append(pipe, items, time.time())
        pipe.execute()

    def __len__(self) -> int:
        return int(self.redis.llen(keys.OUTBOX))

    def pending(self) -> int:
        """Batches in flight or waiting for a retry."""
        return int(self.redis.zcard(keys.BATCHES_DUE))

    def take(
        self,
        *,
        flush_at: int,
        interval: float,
        lease: float,
        force: bool = False,
        batch_id: str,
        now: float | None = None,
    ) -> Batch | None:
        """Cut a new batch off the outbox if one is ready (``flush_at`` calls waiting, or
        the oldest waited ``interval`` seconds, or ``force``), leased for ``lease`` s.
        A batch never holds more than :data:`MAX_BATCH_CALLS` calls."""
        now = time.time() if now is None else now
        flush_at = max(1, min(flush_at, MAX_BATCH_CALLS))
        raw = self._take(
            keys=[keys.OUTBOX, keys.OUTBOX_SINCE, keys.BATCHES, keys.BATCH_META, keys.BATCHES_DUE],
            args=[
                repr(now),
                "1" if force else "0",
                flush_at,
                repr(interval),
                MAX_BATCH_BYTES,
                batch_id,
                repr(now + lease),
            ],
        )
        return None if raw is None else _batch(raw)

    def take_due(self, *, lease: float, now: float | None = None) -> Batch | None:
        """Lease a batch whose retry time or previous lease has passed."""
        now = time.time() if now is None else now
        raw = self._take_due(
            keys=[keys.BATCHES_DUE, keys.BATCHES, keys.BATCH_META],
            args=[repr(now), repr(now + lease)],
        )
        return None if raw is None else _batch(raw)

    def peek_due(self, *, skip: set[str] | frozenset[str] = frozenset()) -> Batch | None:
        """A batch whose retry time or lease has passed, read without leasing it: for
        when Redis is full and refuses the lease's write (see Flusher.flush)."""
        ids: list[Any] = self.redis.zrangebyscore(
            keys.BATCHES_DUE, "-inf", repr(time.time()), start=0, num=len(skip) + 1
        )
        for raw_id in ids:
            batch_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if batch_id in skip:
                continue
            body = self.redis.hget(keys.BATCHES, batch_id)
            meta, attempts = self.redis.hmget(keys.BATCH_META, [batch_id, f"{batch_id}:a"])
            if body is None or meta is None:
                continue  # acknowledged meanwhile
            return _batch([batch_id, body, meta, int(attempts or 0) + 1])
        return None

    def next_due(self) -> float | None:
        """When the earliest pending batch may be taken (None: no batch pending)."""
        first = self.redis.zrange(keys.BATCHES_DUE, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def ack(self, batch: Batch) -> bool:
        """Forget a delivered batch. False if it was already gone (sent twice)."""
        return bool(
            self._ack(keys=[keys.BATCHES_DUE, keys.BATCHES, keys.BATCH_META], args=[batch.id])
        )

    def queue_ack(self, pipe: Any, batch: Batch) -> None:
        pipe.zrem(keys.BATCHES_DUE, batch.id)
        pipe.hdel(keys.BATCHES, batch.id)
        pipe.hdel(keys.BATCH_META, batch.id, f"{batch.id}:a")

    def queue_split(self, pipe: Any, batch: Batch, now: float) -> list[str]:
        """Queue on ``pipe`` the replacement of ``batch`` by its two halves, due now.

        For a batch the collector refused as a whole because of some of its calls: the
        halves are sent on their own until the refused calls stand alone. Their ids
        derive from the batch's, so a retried split writes the same two batches.
        """
        # codec, not orjson: a Decimal amount must come out of the split byte for byte.
        calls = codec.loads(batch.calls)
        half = len(calls) // 2
        ids = []
        for n, (lo, hi) in enumerate(((0, half), (half, len(calls)))):
            part_id = f"{batch.id}.{n}"
            received = batch.received[lo:hi]
            meta = {"calls": hi - lo, "created": batch.created, "received": received}
            pipe.hset(keys.BATCHES, part_id, codec.dumps(calls[lo:hi]))
            pipe.hset(keys.BATCH_META, mapping={part_id: orjson.dumps(meta), f"{part_id}:a": 0})
            pipe.zadd(keys.BATCHES_DUE, {part_id: now})
            ids.append(part_id)
        self.queue_ack(pipe, batch)
        return ids

    def queue_retry_at(self, pipe: Any, batch: Batch, when: float) -> None:
        """Queue on ``pipe`` the next attempt (only if the batch still exists)."""
        pipe.zadd(keys.BATCHES_DUE, {batch.id: when}, xx=True)

    def retry_at(self, batch: Batch, when: float) -> None:
        """Schedule the next attempt (only if the batch still exists)."""
        self.queue_retry_at(self.redis, batch, when)
