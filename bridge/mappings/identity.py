"""The identity store: provider customer -> userId, learned from events that carry both.

A Stripe checkout session with ``client_reference_id``, or a customer whose
``metadata.user_id`` is set, names both our user and the provider's customer; the
engine :meth:`~IdentityStore.learn`\\ s that pair, and a later event that names only
the customer (an invoice, a refund) :meth:`~IdentityStore.resolve`\\ s it. Pairs
never expire (a customer keeps its user). Redis errors propagate: the worker retries
the job. The Redis layout of everything here is :mod:`bridge.kept` (digests in small
packed hashes); keys of the layout before it (``bridge.keys.identity(source, key)``,
:func:`once_key`) are still read until they expire.

The same store keeps two more kinds of facts the mapping language uses:

* **facts** (``remember:`` / ``recall()``): ``<kind>:<id>`` -> value, e.g. which invoice
  a payment intent paid (``invoice:pi_1`` -> ``in_1``), stored beside the customers (and
  buffered with them) because an event that lacks a fact looks it up the same way; they
  are about payments, not people, so they expire after :data:`FACT_TTL`;
* **once-claims** (``once:``): ``<key>`` -> ``<counted as>\t<owner>`` (what the thing
  was counted as: the claimant's first once-id, read back with ``counted()``; the owner
  is the claiming envelope and rule, kept as a digest), set if absent by one atomic
  script (see :meth:`IdentityStore.claim`), never buffered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis import Redis
from redis.typing import EncodableT

from bridge import dedup, kept, keys

#: Seconds a once-claim lives: longer than Stripe retries an event (3 days) and than a
#: year of backfills or replays; after that the same payment could count again.
ONCE_TTL = 400 * 86400

#: Seconds a remembered fact lives (a refund a year later still finds its invoice).
FACT_TTL = ONCE_TTL


def once_key(source: str, key: str) -> str:
    """Redis key of the once-claim on ``key`` in the layout before :mod:`bridge.kept`
    (still read until it expires, never written)."""
    return f"{keys.PREFIX}:once:{source}:{key}"


def counted_as(claim: str | bytes | None) -> str | None:
    """What a claim value says its thing was counted as (the part before the tab)."""
    if not claim:
        return None
    text = claim.decode() if isinstance(claim, bytes) else claim
    return text.split("\t", 1)[0]


def _text(value: object) -> str | None:
    if not value:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class IdentityStore:
    """Customer -> userId pairs, facts and once-claims kept in Redis (:mod:`bridge.kept`)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        # Hashed once, sent by EVALSHA.
        self._claim = redis.register_script(kept.CLAIM_LUA)
        self._claimed = redis.register_script(kept.CLAIMED_LUA)
        self._lookup = redis.register_script(kept.LOOKUP_LUA)
        self._write = redis.register_script(kept.WRITE_LUA)

    def lookup(self, source: str, names: Sequence[str]) -> list[str | None]:
        """What is known of each of ``names`` (a customer's userId, or a fact), in one
        round trip."""
        if not names:
            return []
        w = dedup.window(FACT_TTL, time.time())
        args: list[EncodableT] = [kept.USERS, kept.FACTS, w.current, w.oldest]
        for name in names:
            args += [kept.user_field(source, name), kept.fact_field(source, name)]
        values = self._lookup(keys=[keys.identity(source, n) for n in names], args=args)
        return [_text(v) for v in values]

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        """The userId learned for the first of ``customers`` that has one."""
        return next((v for v in self.lookup(source, customers) if v), None)

    def write(
        self, source_pairs: Sequence[tuple[str, str, str]], facts: Sequence[tuple[str, str, str]]
    ) -> None:
        """Learn ``(source, customer, userId)`` pairs and remember ``(source, key,
        value)`` facts (for FACT_TTL), in one round trip."""
        if not source_pairs and not facts:
            return
        w = dedup.window(FACT_TTL, time.time())
        args: list[EncodableT] = [
            kept.USERS,
            kept.FACTS,
            w.current,
            w.oldest,
            w.expire_at,
            dedup.SHARD_TARGET,
            dedup.MAX_SHARDS,
            len(source_pairs),
        ]
        for s, c, u in source_pairs:
            args += [kept.user_field(s, c), u]
        for s, k, v in facts:
            args += [kept.fact_field(s, k), v]
        self._write(keys=[keys.identity(s, c) for s, c, _ in source_pairs], args=args)

    def learn(self, source: str, customers: Sequence[str], user_id: str) -> None:
        """Remember that each of ``customers`` is ``user_id`` (latest event wins)."""
        self.write([(source, c, user_id) for c in customers], [])

    def remember(self, source: str, ids: Sequence[str], value: str) -> None:
        """Remember the fact ``value`` about each of ``ids`` (``<kind>:<id>``) for
        FACT_TTL; :meth:`resolve` reads it back (``recall()``)."""
        self.write([], [(source, i, value) for i in ids])

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        """Claim ``ids`` (one thing's ids, e.g. a payment's invoice and intent) for
        ``owner``; returns who owns them: ``owner`` when nobody claimed any of them
        before (or ``owner`` itself did), else the earlier claimant (a string that is
        not ``owner``). Written at once, by one atomic script: a claim must be visible
        to every worker before its calls can be sent.

        Redis keeps ``<counted as>\t<digest of owner>`` (see :mod:`bridge.kept`), so
        the answer is ``owner`` itself when the digests match."""
        if not ids:
            return owner
        counted = owner.split("\t", 1)[0]
        digest = kept.owner_digest(owner)
        w = dedup.window(ONCE_TTL, time.time())
        args: list[EncodableT] = [
            kept.CLAIMS,
            w.current,
            w.oldest,
            w.expire_at,
            dedup.SHARD_TARGET,
            dedup.MAX_SHARDS,
            counted,
            digest,
        ]
        for i in ids:
            args += [i, kept.claim_field(source, i)]
        held = _text(self._claim(keys=[once_key(source, i) for i in ids], args=args)) or ""
        if held in (owner, f"{counted}\t{digest}"):
            return owner  # our own claim (a chunk mapped again), in either layout
        return held

    def claimed(self, source: str, key: str) -> str | None:
        """The claim on ``key``: ``<counted as>\t<owner digest>`` (or, under the old
        layout, ``<counted as>\t<owner>``), None when unclaimed."""
        w = dedup.window(ONCE_TTL, time.time())
        args: list[EncodableT] = [
            kept.CLAIMS,
            w.current,
            w.oldest,
            key,
            kept.claim_field(source, key),
        ]
        return _text(self._claimed(keys=[once_key(source, key)], args=args))

    def counted(self, source: str, key: str) -> str | None:
        """What the once-claim on ``key`` counted its thing as, or None (unclaimed)."""
        return counted_as(self.claimed(source, key))


class MemoryIdentityStore(IdentityStore):
    """An identity store held in a dict: for ``bridge mappings test`` and lint, which run
    without Redis. Not for production (nothing is shared between processes)."""

    def __init__(
        self, pairs: dict[str, str] | None = None, claims: dict[str, str] | None = None
    ) -> None:
        self.pairs: dict[str, str] = dict(pairs or {})
        #: once-claims: key -> claim value; ``claims`` gives id -> what an earlier event
        #: counted it as.
        self.claims: dict[str, str] = {
            k: f"{v}\t(an earlier event)" for k, v in (claims or {}).items()
        }

    def lookup(self, source: str, names: Sequence[str]) -> list[str | None]:
        return [self.pairs.get(n) for n in names]

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        for customer in customers:
            if customer in self.pairs:
                return self.pairs[customer]
        return None

    def write(
        self, source_pairs: Sequence[tuple[str, str, str]], facts: Sequence[tuple[str, str, str]]
    ) -> None:
        for _, key, value in (*source_pairs, *facts):
            self.pairs[key] = value

    def learn(self, source: str, customers: Sequence[str], user_id: str) -> None:
        for customer in customers:
            self.pairs[customer] = user_id

    def remember(self, source: str, ids: Sequence[str], value: str) -> None:
        self.learn(source, ids, value)

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        held = next((self.claims[i] for i in ids if i in self.claims), owner)
        for i in ids:
            self.claims.setdefault(i, held)
        return held

    def claimed(self, source: str, key: str) -> str | None:
        return self.claims.get(key)

    def counted(self, source: str, key: str) -> str | None:
        return counted_as(self.claims.get(key))


class ReadOnlyIdentityStore(IdentityStore):
    """Reads a real store but never writes (``bridge preview`` must not teach Redis)."""

    def __init__(self, inner: IdentityStore) -> None:
        self.inner = inner

    def lookup(self, source: str, names: Sequence[str]) -> list[str | None]:
        return self.inner.lookup(source, names)

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        return self.inner.resolve(source, customers)

    def write(
        self, source_pairs: Sequence[tuple[str, str, str]], facts: Sequence[tuple[str, str, str]]
    ) -> None:
        return None

    def learn(self, source: str, customers: Sequence[str], user_id: str) -> None:
        return None

    def remember(self, source: str, ids: Sequence[str], value: str) -> None:
        return None

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        """Claims nothing and reads nothing: a preview shows the calls an event maps to
        as the first event of its payment (and needs no Redis for it)."""
        return owner

    def claimed(self, source: str, key: str) -> str | None:
        return self.inner.claimed(source, key)

    def counted(self, source: str, key: str) -> str | None:
        return self.inner.counted(source, key)


class BufferedIdentityStore(IdentityStore):
    """The identity store for one chunk of events: reads are cached, writes wait for
    :meth:`flush`, which sends them all in one script call.

    A worker maps a chunk of events through one of these. Two rules of one event (and
    often several events of one customer) ask about the same customers; a round trip
    per question was most of a worker's Redis time. Pairs learned earlier in the chunk
    win over what Redis said. Flush before the chunk's calls are committed: if the
    worker dies first, the chunk is mapped again and the pairs learned again.
    """

    def __init__(self, inner: IdentityStore) -> None:
        self.inner = inner
        self.redis = inner.redis
        self.learned: dict[tuple[str, str], str] = {}
        #: The keys of ``learned`` that are facts (``remember``: written with a TTL).
        self.facts: set[tuple[str, str]] = set()
        #: What Redis answered for each customer asked about (None: nothing known).
        self.known: dict[tuple[str, str], str | None] = {}

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        ask = [
            c
            for c in customers
            if (source, c) not in self.learned and (source, c) not in self.known
        ]
        if ask:  # one round trip for every customer not seen yet in this chunk
            values = self.inner.lookup(source, ask)
            for customer, value in zip(ask, values, strict=True):
                self.known[(source, customer)] = value
        for customer in customers:  # in order: the first customer with a user wins
            user = self.learned.get((source, customer)) or self.known.get((source, customer))
            if user:
                return user
        return None

    def learn(self, source: str, customers: Sequence[str], user_id: str) -> None:
        for customer in customers:
            self.learned[(source, customer)] = user_id

    def remember(self, source: str, ids: Sequence[str], value: str) -> None:
        for i in ids:
            self.learned[(source, i)] = value
            self.facts.add((source, i))

    def lookup(self, source: str, names: Sequence[str]) -> list[str | None]:
        return [self.resolve(source, [n]) for n in names]

    def write(
        self, source_pairs: Sequence[tuple[str, str, str]], facts: Sequence[tuple[str, str, str]]
    ) -> None:
        for s, c, u in source_pairs:
            self.learn(s, [c], u)
        for s, k, v in facts:
            self.remember(s, [k], v)

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        # Never buffered: another worker must see the claim before this chunk's calls
        # can be sent. A chunk that dies after claiming is mapped again by the same
        # events, which find their own claim and emit the same calls again.
        return self.inner.claim(source, ids, owner)

    def claimed(self, source: str, key: str) -> str | None:
        return self.inner.claimed(source, key)

    def counted(self, source: str, key: str) -> str | None:
        return self.inner.counted(source, key)  # claims change under a chunk: no cache

    def flush(self) -> None:
        """Write what was learned (one round trip) and forget the chunk's cache."""
        pairs = [(s, c, u) for (s, c), u in self.learned.items() if (s, c) not in self.facts]
        facts = [(s, i, self.learned[(s, i)]) for s, i in self.facts]
        self.inner.write(pairs, facts)
        self.learned.clear()
        self.facts.clear()
        self.known.clear()
