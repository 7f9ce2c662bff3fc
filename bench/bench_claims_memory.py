"""Kept-state memory benchmark: Redis bytes per payment for once-claims, facts and
identity pairs, the layout before (one string key each) against bridge.kept.

One command, from the repository root::

    .venv/bin/python bench/bench_claims_memory.py [--count 100000]

It starts a private ``redis-server`` and, for each structure and layout, flushes it and
keeps ``--count`` payments' worth of state the way the shipped Stripe mapping does for
a paid payment-mode Checkout Session (``checkout.session.completed``, the soak's event):

* **claims**: ``once: [invoice, payment_intent, id]`` claims the payment intent and the
  session (no invoice) for ``<pi>\\t<event>@<received>/checkout-order-completed``;
* **facts**: ``remember: customer`` keeps ``customer:<pi>`` -> the customer;
* **pairs**: ``identity.customer: [customer, payment_intent]`` with a
  ``client_reference_id`` learns two pairs (the soak's payload has none, so it learns
  none; a payment with a user does).

Ids are shaped like live Stripe ids (``pi_`` + 24, ``cs_live_`` + 58, ``cus_`` + 14
characters). Layouts: ``legacy`` runs the commands of the release before (the claim
script verbatim, ``SET ... EX`` per fact, ``MSET`` for pairs); ``compact`` runs
:class:`bridge.mappings.identity.IdentityStore` (cold: the first bucket, unsized;
steady: the bucket before held ``--count`` payments). Bytes are the ``used_memory``
delta, per payment (claims, facts) or per pair. Bounded by ``--count`` (at most
1,000,000). Results: a markdown table on stdout and
``bench/results/claims-memory-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from redis import Redis

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_dedup_memory import redis_cpu  # noqa: E402
from bridge import dedup, kept, keys  # noqa: E402
from bridge.devtools.redis_server import RedisServer  # noqa: E402
from bridge.mappings.identity import (  # noqa: E402
    FACT_TTL,
    ONCE_TTL,
    IdentityStore,
    once_key,
)

#: The claim script of the release before bridge.kept (commit 3eeb73b), verbatim.
LEGACY_CLAIM_LUA = """
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

MAX_COUNT = 1_000_000
SOURCE = "stripe"


def payment(n: int) -> tuple[str, str, str, str]:
    """Payment intent, checkout session, customer and event id of payment ``n``."""
    return (
        f"pi_3Q{n:022d}",
        f"cs_live_a1{n:056d}",
        f"cus_Q{n:013d}",
        f"evt_1Q{n:022d}",
    )


def owner(n: int) -> str:
    pi, _, _, evt = payment(n)
    return f"{pi}\t{evt}@{1764500000.0 + n / 1000!r}/checkout-order-completed"


def measure(redis: Redis, count: int, keep: Callable[[int], object]) -> tuple[float, float]:
    """``used_memory`` bytes per call of ``keep`` and redis-server CPU µs per call."""
    redis.flushall()
    base = int(redis.info("memory")["used_memory"])
    server = redis_cpu(redis)
    for n in range(count):
        keep(n)
    server = redis_cpu(redis) - server
    used = int(redis.info("memory")["used_memory"]) - base
    return used / count, server / count * 1e6


def steady(
    redis: Redis, prefix: str, count: int, keep: Callable[[int], object]
) -> Callable[[int], object]:
    """``keep``, with the bucket before the current one recorded as holding ``count``
    writes (steady traffic: the current bucket is sized for it from the start)."""

    def sized(n: int) -> object:
        if n == 0:
            current = dedup.window(ONCE_TTL, time.time()).current
            redis.hset(f"{prefix}meta", f"{current - 1}:n", count)
        return keep(n)

    return sized


def encodings(redis: Redis, prefix: str) -> str:
    """Generations of the structure and the encodings of a sample of its shards."""
    meta = {k.decode(): v.decode() for k, v in redis.hgetall(f"{prefix}meta").items()}
    layouts = [v for k, v in meta.items() if k == "layout" or (":" not in k and k != "n")]
    found: set[str] = set()
    for i, key in enumerate(redis.scan_iter(match=f"{prefix}*:*")):
        if not key.endswith(b"meta"):
            found.add(bytes(redis.object("encoding", key) or b"").decode())
        if i > 200:
            break
    return f"{'/'.join(layouts)} ({', '.join(sorted(found))})"


def run(count: int) -> tuple[list[tuple[str, str, float, float, str]], str]:
    """Rows (structure, layout, bytes, Redis µs, shards) and the Redis version line."""
    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False).start()
        try:
            redis = Redis.from_url(server.url)
            version = (
                f"Redis {redis.info('server')['redis_version']} "
                f"(allocator `{redis.info('memory')['mem_allocator']}`)"
            )
            store = IdentityStore(redis)
            legacy = redis.register_script(LEGACY_CLAIM_LUA)

            def old_claim(n: int) -> object:
                pi, cs, _, _ = payment(n)
                return legacy(
                    keys=[once_key(SOURCE, pi), once_key(SOURCE, cs)], args=[owner(n), ONCE_TTL]
                )

            def new_claim(n: int) -> object:
                pi, cs, _, _ = payment(n)
                return store.claim(SOURCE, [pi, cs], owner(n))

            def old_fact(n: int) -> object:
                pi, _, cus, _ = payment(n)
                return redis.set(keys.identity(SOURCE, f"customer:{pi}"), cus, ex=FACT_TTL)

            def new_fact(n: int) -> object:
                pi, _, cus, _ = payment(n)
                store.remember(SOURCE, [f"customer:{pi}"], cus)
                return None

            def old_pairs(n: int) -> object:
                pi, _, cus, _ = payment(n)
                user = f"user_{n:08d}"
                return redis.mset({keys.identity(SOURCE, c): user for c in (cus, pi)})

            def new_pairs(n: int) -> object:
                pi, _, cus, _ = payment(n)
                store.learn(SOURCE, [cus, pi], f"user_{n:08d}")
                return None

            # per: what the bytes are divided by (pairs: per pair); writes: fields
            # written per payment (what a bucket is sized by).
            for name, prefix, old, new, per, writes in (
                ("claims (2 ids)", kept.CLAIMS, old_claim, new_claim, 1, 2),
                ("facts (1)", kept.FACTS, old_fact, new_fact, 1, 1),
                ("pairs (2)", kept.USERS, old_pairs, new_pairs, 2, 2),
            ):
                b, us = measure(redis, count, old)
                rows.append((name, "legacy (a string key each)", b / per, us, "—"))
                b, us = measure(redis, count, new)
                rows.append((name, "compact, cold", b / per, us, encodings(redis, prefix)))
                if prefix != kept.USERS:  # pairs never expire: no buckets to size
                    b, us = measure(redis, count, steady(redis, prefix, count * writes, new))
                    rows.append((name, "compact, steady", b / per, us, encodings(redis, prefix)))
        finally:
            server.stop()
    return rows, version


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--count", type=int, default=100_000, help="payments per layout")
    args = p.parse_args(argv)
    if not 1_000 <= args.count <= MAX_COUNT:
        p.error(f"--count must be 1000..{MAX_COUNT}")
    rows, version = run(args.count)
    stamp = dt.datetime.now(dt.UTC)
    lines = [
        f"### Claims, facts and identities memory, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"{version}, {args.count:,} payments per layout; `used_memory` delta. Command: "
        f"`.venv/bin/python bench/bench_claims_memory.py --count {args.count}`",
        "",
        "| kept per payment | layout | bytes (per payment; pairs: per pair) | "
        "Redis CPU µs / call | generations (encoding) |",
        "|---|---|---:|---:|---|",
        *(f"| {s} | {layout} | {b:.1f} | {us:.0f} | {g} |" for s, layout, b, us, g in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "bench" / "results" / f"claims-memory-{stamp:%Y-%m-%d-%H%M%S}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
