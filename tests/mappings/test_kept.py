"""The compact layout of once-claims, facts and identity pairs (bridge.kept), through
IdentityStore and the real Redis.

Expected keys, fields and values are spelled here from the layout's description in
bridge/kept.py and bridge/dedup.py, not computed by bridge: fields are BLAKE2b-112 of
``kind NUL source NUL key`` (kinds ``once``, ``fact``, ``user``); timed shards are
``bridge:{claims,facts}:<bucket>:<shards>:<first 3 bytes mod shards>`` with bucket =
unix time // 4,320,000 (400 days / 8), expiring 400 days after their bucket's span;
pair shards are ``bridge:users:<shards>:<shard>`` and never expire; a claim value is
``<counted as>\\t<16 hex digits of SHA-1 of the owner>``, with an empty counted-as on
the id it was counted as.
"""

from __future__ import annotations

import hashlib
import threading
import time

from redis import Redis

from bridge import keys
from bridge.mappings.identity import (
    BufferedIdentityStore,
    IdentityStore,
    once_key,
)

TTL = 400 * 86400
WIDTH = TTL // 8  # 4,320,000 s: 400 days divide evenly


def field(kind: str, source: str, key: str) -> bytes:
    return hashlib.blake2b(f"{kind}\0{source}\0{key}".encode(), digest_size=14).digest()


def sha16(owner: str) -> str:
    return hashlib.sha1(owner.encode(), usedforsecurity=False).hexdigest()[:16]


def shard(prefix: str, digest: bytes, n: int = 1) -> str:
    return f"{prefix}{n}:{int.from_bytes(digest[:3], 'big') % n}"


def bucket_now() -> int:
    return int(time.time()) // WIDTH


# --- once-claims ---------------------------------------------------------------------


def test_a_claim_is_kept_as_its_counted_as_and_a_digest_of_its_owner(redis: Redis) -> None:
    store = IdentityStore(redis)
    owner = "pi_1\tevt_1@1700000001.0/paid"
    assert store.claim("stripe", ["pi_1", "cs_1"], owner) == owner
    bucket = bucket_now()
    pi, cs = field("once", "stripe", "pi_1"), field("once", "stripe", "cs_1")
    # The counted-as id keeps only the digest (its key is the counted-as); the others
    # keep what it was counted as too.
    assert redis.hget(shard(f"bridge:claims:{bucket}:", pi), pi) == f"\t{sha16(owner)}".encode()
    assert redis.hget(shard(f"bridge:claims:{bucket}:", cs), cs) == f"pi_1\t{sha16(owner)}".encode()
    assert redis.hget("bridge:claims:meta", str(bucket)) == b"1"
    assert store.counted("stripe", "pi_1") == "pi_1"
    assert store.counted("stripe", "cs_1") == "pi_1"
    assert store.counted("stripe", "nothing") is None
    assert store.counted("other", "pi_1") is None  # per source
    # Nothing of the layout before is written.
    assert redis.exists(once_key("stripe", "pi_1"), once_key("stripe", "cs_1")) == 0


def test_a_claim_expires_with_its_bucket(redis: Redis) -> None:
    store = IdentityStore(redis)
    before = time.time()
    store.claim("stripe", ["pi_1"], "pi_1\te")
    bucket = int(before) // WIDTH
    ttl = redis.ttl(shard(f"bridge:claims:{bucket}:", field("once", "stripe", "pi_1")))
    # Expires at the end of its bucket's span plus 400 days: between 400 and 450 days.
    expected = (bucket + 1) * WIDTH + TTL - before
    assert expected - 5 <= ttl <= expected + 1
    assert TTL <= ttl <= TTL + WIDTH


def test_the_first_existing_owner_wins_and_spreads_to_unclaimed_ids(redis: Redis) -> None:
    store = IdentityStore(redis)
    first = "in_1\tevt_inv@1.0/invoice-paid"
    assert store.claim("stripe", ["in_1", "pi_1"], first) == first
    # A session naming the intent and itself loses to the invoice's claim ...
    held = store.claim("stripe", ["pi_1", "cs_1"], "pi_1\tevt_cs@2.0/checkout")
    assert held == f"in_1\t{sha16(first)}"
    # ... and teaches its own id the winner (an event naming only it is refused too).
    assert store.counted("stripe", "cs_1") == "in_1"
    assert store.claim("stripe", ["cs_1"], "cs_1\tevt_cs2@3.0/checkout") == held
    # The winner mapped again (a recovered chunk) finds its own claim.
    assert store.claim("stripe", ["in_1", "pi_1"], first) == first
    assert store.claim("stripe", ["cs_1", "in_1"], first) == first


def test_a_counted_as_that_is_another_events_id_is_spelled_out(redis: Redis) -> None:
    """The winner's counted-as key is none of this claim's ids: its text is written."""
    store = IdentityStore(redis)
    store.claim("stripe", ["in_1", "pi_1"], "in_1\ta")
    store.claim("stripe", ["pi_1", "ch_1"], "pi_1\tb")
    ch = field("once", "stripe", "ch_1")
    assert redis.hget(shard(f"bridge:claims:{bucket_now()}:", ch), ch) == (
        f"in_1\t{sha16('in_1' + chr(9) + 'a')}".encode()
    )
    assert store.counted("stripe", "ch_1") == "in_1"


def test_two_workers_racing_on_overlapping_ids_agree_on_one_owner(
    redis: Redis, redis_url: str
) -> None:
    """Two threads, each with its own connection, claim [a, b] and [b, c] at the same
    moment, 200 times: exactly one of them owns each payment, and all three ids say so."""
    results: dict[str, list[str]] = {"x": [], "y": []}
    barrier = threading.Barrier(2)

    def work(name: str, ids: list[str]) -> None:
        store = IdentityStore(Redis.from_url(redis_url))
        for n in range(200):
            barrier.wait(timeout=30)
            mine = [f"{i}{n}" for i in ids]
            results[name].append(store.claim("stripe", mine, f"{mine[0]}\t{name}{n}"))

    threads = [
        threading.Thread(target=work, args=("x", ["a", "b"])),
        threading.Thread(target=work, args=("y", ["b", "c"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    store = IdentityStore(redis)
    wins = {"x": 0, "y": 0}
    for n in range(200):
        x, y = results["x"][n], results["y"][n]
        x_won, y_won = x == f"a{n}\tx{n}", y == f"b{n}\ty{n}"
        assert x_won != y_won, (n, x, y)  # exactly one owner
        winner = "x" if x_won else "y"
        wins[winner] += 1
        counted = f"a{n}" if x_won else f"b{n}"
        # The loser was told the winner's claim; every id says what it was counted as.
        loser = y if x_won else x
        owner = f"a{n}\tx{n}" if x_won else f"b{n}\ty{n}"
        assert loser == f"{counted}\t{sha16(owner)}"
        assert {store.counted("stripe", f"{i}{n}") for i in "abc"} == {counted}
    assert sum(wins.values()) == 200


def test_claims_of_the_layout_before_are_honoured_until_they_expire(redis: Redis) -> None:
    store = IdentityStore(redis)
    old = "pi_1\tevt_1@1700000001.0/payment-intent-order-completed"
    redis.set(once_key("stripe", "pi_1"), old, ex=3600)  # as the release before wrote it
    # Another event of the payment loses to it, and its own ids learn the old owner.
    assert store.claim("stripe", ["pi_1", "cs_1"], "pi_1\tevt_2@2.0/checkout") == old
    assert store.counted("stripe", "pi_1") == "pi_1"
    assert store.counted("stripe", "cs_1") == "pi_1"
    cs = field("once", "stripe", "cs_1")
    assert redis.hget(shard(f"bridge:claims:{bucket_now()}:", cs), cs) == (
        f"pi_1\t{sha16(old)}".encode()
    )
    # The old owner mapped again after the upgrade finds its own claim, through the old
    # key or through an id that now holds its digest.
    assert store.claim("stripe", ["pi_1"], old) == old
    assert store.claim("stripe", ["cs_1"], old) == old
    # The old key is read, never rewritten.
    assert redis.get(once_key("stripe", "pi_1")) == old.encode()
    assert 0 < redis.ttl(once_key("stripe", "pi_1")) <= 3600


def test_a_counted_as_longer_than_a_packed_value_still_reads_back(redis: Redis) -> None:
    """Over 64 bytes the shard is no longer packed (bigger, still correct)."""
    store = IdentityStore(redis)
    long = "subscription-started:acct_1234567890abcdef/sub_" + "x" * 40
    store.claim("stripe", [long, "other"], f"{long}\te")
    assert store.counted("stripe", "other") == long
    assert store.counted("stripe", long) == long


# --- facts and identity pairs ---------------------------------------------------------


def test_facts_live_in_expiring_buckets_and_pairs_in_permanent_shards(redis: Redis) -> None:
    store = IdentityStore(redis)
    before = time.time()
    store.remember("stripe", ["invoice:pi_1"], "in_1")
    store.learn("stripe", ["cus_1"], "user_1")
    fact, user = field("fact", "stripe", "invoice:pi_1"), field("user", "stripe", "cus_1")
    bucket = int(before) // WIDTH
    fact_shard = shard(f"bridge:facts:{bucket}:", fact)
    assert redis.hget(fact_shard, fact) == b"in_1"
    assert TTL <= redis.ttl(fact_shard) <= TTL + WIDTH
    assert redis.hget(shard("bridge:users:", user), user) == b"user_1"
    assert redis.ttl(shard("bridge:users:", user)) == -1
    assert store.lookup("stripe", ["invoice:pi_1", "cus_1", "cus_2"]) == ["in_1", "user_1", None]
    assert (
        redis.exists(keys.identity("stripe", "invoice:pi_1"), keys.identity("stripe", "cus_1")) == 0
    )


def test_a_fact_older_than_the_ttl_is_not_read(redis: Redis) -> None:
    """Buckets outside the window are not looked at (their shards may not have expired
    yet: they live up to an eighth longer)."""
    store = IdentityStore(redis)
    now = bucket_now()
    oldest = int(time.time() - TTL) // WIDTH
    for bucket, value in ((oldest - 1, "too-old"), (oldest, "old")):
        digest = field("fact", "stripe", f"k:{value}")
        redis.hset("bridge:facts:meta", str(bucket), "1")
        redis.hset(shard(f"bridge:facts:{bucket}:", digest), digest, value)
    assert store.lookup("stripe", ["k:too-old", "k:old"]) == [None, "old"]
    # A fact written again in a newer bucket wins over its older copy.
    digest = field("fact", "stripe", "k:old")
    store.remember("stripe", ["k:old"], "new")
    assert redis.hget(shard(f"bridge:facts:{now}:", digest), digest) == b"new"
    assert store.lookup("stripe", ["k:old"]) == ["new"]


def test_pairs_grow_by_generations_and_the_latest_pair_wins(redis: Redis) -> None:
    store = IdentityStore(redis)
    for n in range(400):  # 48 fit 1 shard, 48 * 5 = 240 fit 1 + 4: then 16 more
        store.learn("stripe", [f"cus_{n}"], f"user_{n}")
    assert redis.hget("bridge:users:meta", "layout") == b"1,4,16"
    assert redis.hget("bridge:users:meta", "n") == b"400"
    assert store.lookup("stripe", [f"cus_{n}" for n in range(400)]) == [
        f"user_{n}" for n in range(400)
    ]
    # A customer learned in the first generation, learned again: the newest wins.
    store.learn("stripe", ["cus_0"], "user_new")
    assert store.resolve("stripe", ["cus_0"]) == "user_new"
    for key in redis.scan_iter(match="bridge:users:*:*"):
        assert redis.object("encoding", key) == b"ziplist"


def test_identities_and_facts_of_the_layout_before_still_resolve(redis: Redis) -> None:
    store = IdentityStore(redis)
    redis.set(keys.identity("stripe", "cus_old"), "user_old")  # pairs never expired
    redis.set(keys.identity("stripe", "customer:pi_old"), "cus_old", ex=3600)
    assert store.lookup("stripe", ["cus_old", "customer:pi_old"]) == ["user_old", "cus_old"]
    # Learning the pair again writes the new layout and drops the old key.
    store.learn("stripe", ["cus_old"], "user_new")
    assert redis.exists(keys.identity("stripe", "cus_old")) == 0
    assert store.resolve("stripe", ["cus_old"]) == "user_new"


def test_a_buffered_chunk_reads_and_writes_in_one_script_call_each(redis: Redis) -> None:
    def scripts() -> int:
        stats = redis.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))

    IdentityStore(redis).learn("stripe", ["cus_known"], "u_known")
    buffered = BufferedIdentityStore(IdentityStore(redis))
    before = scripts()
    assert buffered.resolve("stripe", ["cus_1", "cus_known"]) == "u_known"
    assert scripts() - before == 1
    buffered.learn("stripe", ["cus_1", "pi_1"], "u1")
    buffered.remember("stripe", ["customer:pi_1", "invoice:pi_1"], "cus_1")
    assert buffered.resolve("stripe", ["pi_1"]) == "u1"  # from the chunk, no round trip
    assert scripts() - before == 1
    assert IdentityStore(redis).lookup("stripe", ["pi_1", "customer:pi_1"]) == [None, None]
    buffered.flush()
    assert scripts() - before == 2 + 1  # the flush, and the lookup just above
    fresh = IdentityStore(redis)
    assert fresh.lookup("stripe", ["cus_1", "pi_1", "customer:pi_1", "invoice:pi_1"]) == [
        "u1",
        "u1",
        "cus_1",
        "cus_1",
    ]
    facts = list(redis.scan_iter(match="bridge:facts:*:*:*"))
    assert facts
    assert all(TTL <= redis.ttl(k) <= TTL + WIDTH for k in facts)
    # A flush with nothing learned sends nothing.
    after = scripts()
    buffered.flush()
    assert scripts() == after


# --- memory ------------------------------------------------------------------------------


def _bytes(redis: Redis, prefix: str) -> int:
    return sum(
        int(redis.memory_usage(k, samples=0) or 0) for k in redis.scan_iter(match=f"{prefix}*")
    )


def test_memory_per_claimed_payment_and_per_fact(redis: Redis) -> None:
    """20,000 payments as the Stripe checkout rule keeps them: a claim on the payment
    intent and the session, a fact ``customer:<pi>``, and two pairs.

    Bounds, from the layout (Redis 6.2 ziplist: 1 byte back-length + 1 byte header +
    the string, per field and per value; at most 64 bytes each stays packed):

    * claim: fields 2 x (2 + 14) = 32; values ``\\t`` + 16 hex = 17 -> 19 and
      ``pi`` (27) + 1 + 16 = 44 -> 46: 97 bytes a payment, plus each shard's key,
      expiry, header and allocation slack (~200 bytes per shard of ~48 fields: ~8 a
      payment). Bound 120, against ~570 for the two string keys before (bench:
      bench/bench_claims_memory.py).
    * fact: field 16 + ``cus_`` 18 -> 20 = 36, plus ~4 of its shard: bound 48 (~186 before).
    * pair: field 16 + ``user_00000000`` -> 15 = 31, plus ~4: bound 40 (~133 before).
    """
    store = IdentityStore(redis)
    count = 20_000
    for n in range(count):
        pi, cs, cus = f"pi_3Q{n:022d}", f"cs_live_a1{n:056d}", f"cus_Q{n:013d}"
        store.claim("stripe", [pi, cs], f"{pi}\tevt_1Q{n:022d}@1764500000.{n}/checkout")
        store.remember("stripe", [f"customer:{pi}"], cus)
        store.learn("stripe", [cus, pi], f"user_{n:08d}")
    per_claim = _bytes(redis, "bridge:claims:") / count
    per_fact = _bytes(redis, "bridge:facts:") / count
    per_pair = _bytes(redis, "bridge:users:") / (2 * count)
    assert per_claim <= 120, per_claim
    assert per_fact <= 48, per_fact
    assert per_pair <= 40, per_pair
    # Every shard stayed packed.
    for key in redis.scan_iter(match="bridge:*:*:*"):
        assert redis.object("encoding", key) == b"ziplist", key
