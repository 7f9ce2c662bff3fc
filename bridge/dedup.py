"""The compact layout of remembered event ids: digests in small, time-bucketed hashes.

An event id is remembered as a 14-byte BLAKE2b digest of ``id``, its source and the
id (:func:`id_digest`): a field with an empty value in one shard of the current time
bucket, the hash ``bridge:seen:<bucket>:<shards>:<shard>``.

* **Buckets.** A bucket spans :func:`bucket_width` seconds (an eighth of
  ``BRIDGE_DEDUP_TTL``); all its shards expire ``BRIDGE_DEDUP_TTL`` seconds after its
  span ends, so every id is remembered at least the window and at most an eighth longer,
  and forgetting costs no work per id. An accept checks every bucket an id of the last
  window can be in, plus the next one (another web host's clock may run a little ahead).
* **Shards.** Redis stores a hash of at most 128 short fields (``hash-max-ziplist-entries``,
  ``hash-max-listpack-entries`` from Redis 7) as one packed array: ~16 bytes per field,
  against ~64-88 for a member of a large set or hash (a dict entry, an allocation per
  string, a bucket pointer). So a bucket is cut into shards, sized for
  :data:`SHARD_TARGET` ids per shard on average: when the bucket is first written, the
  smallest power of two that fits the larger of the two buckets before it (traffic a
  bucket ago is the best guess of traffic now). When a bucket outgrows that (a first
  deployment, a traffic rise), new ids go to a new *generation* of four times the
  shards; lookups check every generation of a bucket. The shard of a digest is its first
  three bytes modulo the generation's shard count. Each bucket's shard counts and its
  number of ids live in ``bridge:seen:meta``.
* **Digest size.** 112 bits: the chance that any two of 100 million ids in one window
  collide (the later would be dropped as a duplicate) is below 1e-18.

Everything happens in the intake Lua script (:data:`bridge.intake.store.ACCEPT_LUA`), so
an accept stays one atomic round trip. The shard keys are built inside the script, so the
layout suits a single Redis or Sentinel, not Redis Cluster (nor did the one before it:
the inbox and the dedup keys were never in one slot).

The layout before (one string key per id, :func:`bridge.keys.dedup` and
:func:`bridge.keys.dedup_signed`, ~197 bytes per id) is still checked, so ids remembered
by a release before this one stay duplicates until their keys expire; nothing writes it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

#: Bytes of each remembered digest.
DIGEST_BYTES = 14

#: Buckets per window: more buckets keep ids for less time beyond the window but cost
#: one more lookup per webhook each.
BUCKETS_PER_WINDOW = 8

#: Average ids per shard a bucket is sized for: well under the 128 fields Redis keeps
#: packed, so that the fullest of thousands of shards (Poisson spread) stays packed too.
SHARD_TARGET = 48

#: Most shards per bucket (2**24, the range of the three bytes that pick the shard).
MAX_SHARDS = 1 << 24


def id_digest(source: str, event_id: str) -> bytes:
    """The field remembering that ``source`` delivered ``event_id``."""
    return field_digest(b"id", source, event_id)


def signed_digest(source: str, digest: str) -> bytes:
    """The field remembering the signed content's digest (providers that do not sign
    their event id: a replay under a new id is still a duplicate)."""
    return field_digest(b"signed", source, digest)


def field_digest(kind: bytes, source: str, value: str) -> bytes:
    """:data:`DIGEST_BYTES` of BLAKE2b of ``kind``, ``source`` and ``value``: the field
    of one remembered thing (event ids here; claims, facts and identities in
    :mod:`bridge.kept`). The kind keeps one kind's field from matching another's."""
    # NUL separators: no (source, value) pair can spell another's input.
    data = b"\0".join((kind, source.encode(), value.encode("utf-8", "surrogatepass")))
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def bucket_width(ttl: int) -> int:
    """Seconds one bucket spans for a window of ``ttl`` seconds."""
    return max(1, math.ceil(ttl / BUCKETS_PER_WINDOW))


@dataclass(frozen=True)
class Window:
    """The buckets one accept uses at one moment (script arguments)."""

    #: Index (Unix time // width) of the bucket new ids go into.
    current: int
    #: Index of the oldest bucket that can hold an id seen within the window.
    oldest: int
    #: Unix time at which the current bucket's shards expire: ``ttl`` after its span.
    expire_at: int


def window(ttl: int, now: float) -> Window:
    """The buckets for an accept at ``now`` with a window of ``ttl`` seconds."""
    width = bucket_width(ttl)
    current = int(now // width)
    return Window(
        current=current, oldest=int((now - ttl) // width), expire_at=(current + 1) * width + ttl
    )


#: Lua helpers for a time-bucketed structure of this layout (dedup here, and the kept
#: claims and facts of :mod:`bridge.kept`): ``shard`` names a field's shard, ``timed``
#: reads a structure's live buckets (newest first) and their generations, ``tget`` finds
#: a field (newest bucket and generation first), ``tgrow`` picks the shard count new
#: fields of the current bucket go to (sizing a new bucket, adding a generation when it
#: is outgrown), ``tput`` writes one. One copy, prepended to every script that uses them.
LUA_TIMED = """local function shard(prefix, n, digest)
  local a, b, c = string.byte(digest, 1, 3)
  return prefix .. n .. ':' .. ((a * 65536 + b * 256 + c) % n)
end
local function gens(layout)
  local out = {}
  if layout then
    for n in string.gmatch(layout, '%d+') do out[#out + 1] = n end
  end
  return out
end
local function timed(prefix, current, oldest)
  local s = {prefix = prefix, meta = prefix .. 'meta', current = current, buckets = {}}
  for index = current + 1, oldest, -1 do s.buckets[#s.buckets + 1] = index end
  s.layouts = redis.call('HMGET', s.meta, unpack(s.buckets))
  return s
end
-- The value of digest in the newest bucket and generation that has it, else false.
local function tget(s, digest)
  for i, index in ipairs(s.buckets) do
    local g = gens(s.layouts[i])
    for j = #g, 1, -1 do
      local v = redis.call('HGET', shard(s.prefix .. index .. ':', g[j], digest), digest)
      if v then return v end
    end
  end
  return false
end
-- The shard count new fields of the current bucket go to (adding more of them).
local function tgrow(s, adding, target, most)
  local current = s.current
  local count = redis.call('HINCRBY', s.meta, current .. ':n', adding) - adding
  local layout = s.layouts[2]
  local n
  if not layout then
    local before = redis.call('HMGET', s.meta, (current - 1) .. ':n', (current - 2) .. ':n')
    local expected = math.max(tonumber(before[1]) or 0, tonumber(before[2]) or 0)
    n = 1
    while n < most and n * target < expected do n = n * 2 end
    redis.call('HSET', s.meta, current, n)
    s.layouts[2] = tostring(n)
    local oldest = s.buckets[#s.buckets]
    for _, field in ipairs(redis.call('HKEYS', s.meta)) do
      local index = tonumber(string.match(field, '^%-?%d+'))
      if index and index < oldest then redis.call('HDEL', s.meta, field) end
    end
  else
    local capacity = 0
    for size in string.gmatch(layout, '%d+') do
      n = tonumber(size)
      capacity = capacity + n * target
    end
    if count >= capacity and n < most then
      n = n * 4
      s.layouts[2] = layout .. ',' .. n
      redis.call('HSET', s.meta, current, s.layouts[2])
    end
  end
  return n
end
local function tput(s, n, digest, value, expire_at)
  local key = shard(s.prefix .. s.current .. ':', n, digest)
  redis.call('HSET', key, digest, value)
  redis.call('EXPIREAT', key, expire_at)
end
"""
