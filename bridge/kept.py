"""The compact layout of what workers keep: once-claims, facts and identity pairs.

Modelled on :mod:`bridge.dedup`: each kept thing is a field of a small hash, the
:data:`~bridge.dedup.DIGEST_BYTES`-byte digest of its kind, source and key
(:func:`claim_field`, :func:`fact_field`, :func:`user_field`), in one shard of a set
of hashes sized to hold about :data:`~bridge.dedup.SHARD_TARGET` fields each, so that
Redis keeps every shard packed (a ziplist/listpack: ~2 bytes of overhead per field and
value instead of ~70 for a key of its own). Values must stay at most 64 bytes
(``hash-max-ziplist-value``): a longer one turns its shard into a real hash, correct but
several times bigger.

* **Once-claims** (``bridge:claims:<bucket>:<shards>:<shard>``) and **facts**
  (``bridge:facts:...``) expire: they live in time buckets of an eighth of
  :data:`~bridge.mappings.identity.ONCE_TTL` (50 days) whose shards all expire together
  the TTL after the bucket's span ends, so nothing is done per id to forget it. A
  bucket starts with the shard count that fits the larger of the two buckets before it
  and grows by *generations* of four times the shards; ``<prefix>meta`` holds each
  bucket's generations (``"1,4"``) and its number of writes (``<bucket>:n``). Reads
  look at the newest bucket and generation first (a fact written again wins).
* **Identity pairs** (``bridge:users:<shards>:<shard>``) never expire: one set of
  generations (``bridge:users:meta``: ``layout`` -> ``"1,4,16"``, ``n`` -> pairs),
  a new one of four times the shards whenever the pairs outgrow the ones before.

A claim's value is ``<counted as>\\t<owner digest>`` (:func:`owner_digest`: 16 hex
digits of SHA-1 of the full owner string; the owner is only compared for equality), and
just ``\\t<owner digest>`` on the id it was counted as (the key is the counted-as text:
it is known when the field is read). Everything is done by scripts, one round trip each
and atomic. The layout before (one string key per thing: ``bridge:once:<source>:<id>``,
``bridge:identity:<source>:<key>``) is still read by the same scripts until its keys
expire (pairs never do); nothing writes it, and learning a pair deletes its old key.

Cost: a lookup that finds nothing (every new payment's claim) asks every generation of
every live bucket, ~25 more Redis calls per Stripe checkout webhook than one string key
per thing and ~0.09 ms more Redis CPU (bench/README.md); the memory is 3-5x smaller
(``bench/bench_claims_memory.py``).
"""

from __future__ import annotations

import hashlib

from bridge import dedup, keys

#: Prefix of the once-claim shards (``<bucket>:<shards>:<shard>`` follows) and of
#: their ``meta`` hash.
CLAIMS = f"{keys.PREFIX}:claims:"

#: Prefix of the fact shards (as for claims).
FACTS = f"{keys.PREFIX}:facts:"

#: Prefix of the identity pair shards (``<shards>:<shard>``, no bucket) and ``meta``.
USERS = f"{keys.PREFIX}:users:"

#: Hex digits of the owner digest kept in a claim value (64 bits: two different owners
#: of one payment's claims look alike with a chance of 5e-20).
OWNER_HEX = 16


def claim_field(source: str, key: str) -> bytes:
    """The field of the once-claim on ``key``."""
    return dedup.field_digest(b"once", source, key)


def fact_field(source: str, key: str) -> bytes:
    """The field of the fact ``key`` (``<kind>:<id>``)."""
    return dedup.field_digest(b"fact", source, key)


def user_field(source: str, customer: str) -> bytes:
    """The field of the identity pair of ``customer``."""
    return dedup.field_digest(b"user", source, customer)


def owner_digest(owner: str) -> str:
    """What a claim keeps of its owner: the same in Lua (``redis.sha1hex``), which
    digests an owner found under the old layout."""
    return hashlib.sha1(owner.encode(), usedforsecurity=False).hexdigest()[:OWNER_HEX]


# Helpers shared by the scripts: the timed structures' (claims, facts) are dedup's
# (bridge.dedup.LUA_TIMED); a "permanent" one (pairs) is (prefix, its layout).
_LIB = (
    dedup.LUA_TIMED
    + """
local function permanent(prefix)
  local p = {prefix = prefix, meta = prefix .. 'meta'}
  p.layout = redis.call('HGET', p.meta, 'layout')
  return p
end
local function pget(p, digest)
  local g = gens(p.layout)
  for j = #g, 1, -1 do
    local v = redis.call('HGET', shard(p.prefix, g[j], digest), digest)
    if v then return v end
  end
  return false
end
local function pgrow(p, target, most)
  if not p.layout then
    p.layout = '1'
    redis.call('HSET', p.meta, 'layout', p.layout)
    return 1
  end
  local count = tonumber(redis.call('HGET', p.meta, 'n')) or 0
  local capacity, n = 0, 1
  for size in string.gmatch(p.layout, '%d+') do
    n = tonumber(size)
    capacity = capacity + n * target
  end
  if count >= capacity and n < most then
    n = n * 4
    p.layout = p.layout .. ',' .. n
    redis.call('HSET', p.meta, 'layout', p.layout)
  end
  return n
end
-- Set digest to value in the newest generation; a field new there counts.
local function pput(p, n, digest, value)
  local added = redis.call('HSET', shard(p.prefix, n, digest), digest, value)
  if added == 1 then redis.call('HINCRBY', p.meta, 'n', 1) end
end
"""
)

#: Claim ids for an owner (see :meth:`bridge.mappings.identity.IdentityStore.claim`).
#: KEYS: the ids' old-layout keys. ARGV: claims prefix, current bucket, oldest bucket,
#: expire-at, shard target, most shards, the owner's counted-as, its digest, then per id
#: its text and its field. Returns the winner as ``<counted as>\\t<owner digest>``, or
#: the old-layout value when an old key holds the claim.
CLAIM_LUA = (
    _LIB
    + """
local s = timed(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local counted, owner, held = ARGV[7], ARGV[8], nil
local ids, fields, claimed = {}, {}, {}
for i = 1, #KEYS do
  ids[i], fields[i] = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
end
for i = 1, #KEYS do
  local v = tget(s, fields[i])
  if v then
    claimed[i] = true
    if not held then
      local tab = string.find(v, '\\t', 1, true)
      counted, owner = string.sub(v, 1, tab - 1), string.sub(v, tab + 1)
      if counted == '' then counted = ids[i] end
      held = counted .. '\\t' .. owner
    end
  else
    local old = redis.call('GET', KEYS[i])
    if old then
      claimed[i] = true
      if not held then
        held = old
        counted = string.match(old, '^([^\\t]*)')
        owner = string.sub(redis.sha1hex(old), 1, 16)
      end
    end
  end
end
local todo = {}
for i = 1, #KEYS do
  if not claimed[i] then todo[#todo + 1] = i end
end
if #todo > 0 then
  local n = tgrow(s, #todo, tonumber(ARGV[5]), tonumber(ARGV[6]))
  for _, i in ipairs(todo) do
    local value = counted .. '\\t' .. owner
    if ids[i] == counted then value = '\\t' .. owner end
    tput(s, n, fields[i], value, ARGV[4])
  end
end
return held or (counted .. '\\t' .. owner)
"""
)

#: The claim on one id, or false. KEYS: its old-layout key. ARGV: claims prefix,
#: current bucket, oldest bucket, the id, its field. Returns ``<counted as>\\t<owner
#: digest>`` (or the old value).
CLAIMED_LUA = (
    _LIB
    + """
local s = timed(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local v = tget(s, ARGV[5])
if v then
  if string.sub(v, 1, 1) == '\\t' then return ARGV[4] .. v end
  return v
end
return redis.call('GET', KEYS[1])
"""
)

#: What is known of each key (an identity pair, else a fact, else an old-layout key).
#: KEYS: the keys' old-layout keys. ARGV: users prefix, facts prefix, current bucket,
#: oldest bucket, then per key its user field and its fact field. Returns one value
#: (or false) per key.
LOOKUP_LUA = (
    _LIB
    + """
local p = permanent(ARGV[1])
local s = timed(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
local out = {}
for i = 1, #KEYS do
  out[i] = pget(p, ARGV[3 + 2 * i]) or tget(s, ARGV[4 + 2 * i])
    or redis.call('GET', KEYS[i])
end
return out
"""
)

#: Learn pairs and remember facts. KEYS: the pairs' old-layout keys (deleted: the new
#: pair supersedes them). ARGV: users prefix, facts prefix, current bucket, oldest
#: bucket, expire-at, shard target, most shards, number of pairs, then per pair its field
#: and value, then per fact its field and value.
WRITE_LUA = (
    _LIB
    + """
local pairs_n = tonumber(ARGV[8])
local target, most = tonumber(ARGV[6]), tonumber(ARGV[7])
if pairs_n > 0 then
  local p = permanent(ARGV[1])
  local n = pgrow(p, target, most)
  for i = 1, pairs_n do
    pput(p, n, ARGV[7 + 2 * i], ARGV[8 + 2 * i])
  end
  redis.call('DEL', unpack(KEYS))
end
local first = 9 + 2 * pairs_n
if #ARGV >= first then
  local s = timed(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
  local n = tgrow(s, (#ARGV - first + 1) / 2, target, most)
  for i = first, #ARGV, 2 do
    tput(s, n, ARGV[i], ARGV[i + 1], ARGV[5])
  end
end
return 1
"""
)
