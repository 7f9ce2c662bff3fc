"""The identity store: provider customer -> userId, learned from events that carry both.

A Stripe checkout session with ``client_reference_id``, or a customer whose
``metadata.user_id`` is set, names both our user and the provider's customer; the
engine :meth:`~IdentityStore.learn`\\ s that pair, and a later event that names only
the customer (an invoice, a refund) :meth:`~IdentityStore.resolve`\\ s it. Keys are
``bridge.keys.identity(source, customer)``; values never expire (a customer keeps its
user). Redis errors propagate: the worker retries the job.

The same store keeps two more kinds of facts the mapping language uses:

* **facts** (``remember:`` / ``recall()``): ``<kind>:<id>`` -> value, e.g. which invoice
  a payment intent paid (``invoice:pi_1`` -> ``in_1``), stored beside the customers (and
  buffered with them) because an event that lacks a fact looks it up the same way; they
  are about payments, not people, so they expire after :data:`FACT_TTL`;
* **once-claims** (``once:``): ``bridge:once:<source>:<key>`` -> ``<counted as>\t<event>/
  <rule>`` (what the thing was counted as: the claimant's first once-id; read back with
  ``counted()``), set with NX by one atomic script (see :meth:`IdentityStore.claim`),
  never buffered.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis

from bridge import keys

#: Seconds a once-claim lives: longer than Stripe retries an event (3 days) and than a
#: year of backfills or replays; after that the same payment could count again.
ONCE_TTL = 400 * 86400

#: Seconds a remembered fact lives (a refund a year later still finds its invoice).
FACT_TTL = ONCE_TTL

# Who owns the claim on any of KEYS: the first existing owner, else ARGV[1]; every key
# not yet claimed is set to that owner (so a later event that names only one of the
# payment's ids finds the claim). Atomic, so two workers never both win.
_CLAIM = """
local owner = ARGV[1]
for _, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held then owner = held break end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, owner, 'NX', 'EX', tonumber(ARGV[2]))
end
return owner
"""


def once_key(source: str, key: str) -> str:
    """Redis key of the once-claim on ``key`` (see :meth:`IdentityStore.claim`)."""
    return f"{keys.PREFIX}:once:{source}:{key}"


def counted_as(claim: str | bytes | None) -> str | None:
    """What a claim value says its thing was counted as (the part before the tab)."""
    if not claim:
        return None
    text = claim.decode() if isinstance(claim, bytes) else claim
    return text.split("\t", 1)[0]


class IdentityStore:
    """Customer -> userId pairs kept in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)  # hashed once, sent by EVALSHA

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        """The userId learned for the first of ``customers`` that has one."""
        if not customers:
            return None
        values = self.redis.mget([keys.identity(source, c) for c in customers])
        for value in values:
            if value:
                return value.decode() if isinstance(value, bytes) else str(value)
        return None

    def learn(self, source: str, customers: Sequence[str], user_id: str) -> None:
        """Remember that each of ``customers`` is ``user_id`` (latest event wins)."""
        if not customers:
            return
        self.redis.mset({keys.identity(source, c): user_id for c in customers})

    def remember(self, source: str, ids: Sequence[str], value: str) -> None:
        """Remember the fact ``value`` about each of ``ids`` (``<kind>:<id>``) for
        FACT_TTL; :meth:`resolve` reads it back (``recall()``)."""
        if not ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.set(keys.identity(source, i), value, ex=FACT_TTL)
        pipe.execute()

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        """Claim ``ids`` (one thing's ids, e.g. a payment's invoice and intent) for
        ``owner``; returns who owns them: ``owner`` when nobody claimed any of them
        before (or ``owner`` itself did), else the earlier claimant. Written at once:
        a claim must be visible to every worker before its calls can be sent."""
        if not ids:
            return owner
        held = self._claim(keys=[once_key(source, i) for i in ids], args=[owner, ONCE_TTL])
        return held.decode() if isinstance(held, bytes) else str(held)

    def counted(self, source: str, key: str) -> str | None:
        """What the once-claim on ``key`` counted its thing as, or None (unclaimed)."""
        return counted_as(self.redis.get(once_key(source, key)))


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

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        for customer in customers:
            if customer in self.pairs:
                return self.pairs[customer]
        return None

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

    def counted(self, source: str, key: str) -> str | None:
        return counted_as(self.claims.get(key))


class ReadOnlyIdentityStore(IdentityStore):
    """Reads a real store but never writes (``bridge preview`` must not teach Redis)."""

    def __init__(self, inner: IdentityStore) -> None:
        self.inner = inner

    def resolve(self, source: str, customers: Sequence[str]) -> str | None:
        return self.inner.resolve(source, customers)

    def learn(self, source: str, customers: Sequence[str], user_id: str) -> None:
        return None

    def remember(self, source: str, ids: Sequence[str], value: str) -> None:
        return None

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        """Claims nothing and reads nothing: a preview shows the calls an event maps to
        as the first event of its payment (and needs no Redis for it)."""
        return owner

    def counted(self, source: str, key: str) -> str | None:
        return self.inner.counted(source, key)


class BufferedIdentityStore(IdentityStore):
    """The identity store for one chunk of events: reads are cached, writes wait for
    :meth:`flush`, which sends them all with one ``MSET``.

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
        if ask:  # one MGET for every customer not seen yet in this chunk
            values = self.redis.mget([keys.identity(source, c) for c in ask])
            for customer, value in zip(ask, values, strict=True):
                text = value.decode() if isinstance(value, bytes) else value
                self.known[(source, customer)] = text or None
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

    def claim(self, source: str, ids: Sequence[str], owner: str) -> str:
        # Never buffered: another worker must see the claim before this chunk's calls
        # can be sent. A chunk that dies after claiming is mapped again by the same
        # events, which find their own claim and emit the same calls again.
        return self.inner.claim(source, ids, owner)

    def counted(self, source: str, key: str) -> str | None:
        return self.inner.counted(source, key)  # claims change under a chunk: no cache

    def flush(self) -> None:
        """Write what was learned (one round trip) and forget the chunk's cache."""
        pairs = {
            keys.identity(s, c): u for (s, c), u in self.learned.items() if (s, c) not in self.facts
        }
        if pairs and not self.facts:
            self.redis.mset(pairs)
        elif self.learned:  # still one round trip: facts need SET ... EX each
            pipe = self.redis.pipeline(transaction=False)
            if pairs:
                pipe.mset(pairs)
            for s, i in self.facts:
                pipe.set(keys.identity(s, i), self.learned[(s, i)], ex=FACT_TTL)
            pipe.execute()
        self.learned.clear()
        self.facts.clear()
        self.known.clear()
