"""Dedup memory benchmark: Redis bytes per remembered event id, old layout against new.

One command, from the repository root::

    .venv/bin/python bench/bench_dedup_memory.py [--count 200000]

It starts a private ``redis-server`` (the one bridge's tests use) and, for each layout,
flushes it, remembers ``--count`` distinct Stripe-like event ids through the accept
script, deletes the inbox (the envelopes are not dedup state) and reads ``INFO memory``
``used_memory`` before and after: bytes per id. Layouts:

* ``legacy``: the script before bridge.dedup (``SET bridge:dedup:<source>:<id> <time>
  NX EX ttl``, one key per id), kept here verbatim;
* ``compact-cold``: bridge's script (``EventStore.accept``) with no bucket before it: the
  first bucket of a new deployment, one shard that outgrows Redis' packed encoding;
* ``compact``: bridge's script with the bucket before holding ``--count`` ids (steady
  traffic): the bucket is sharded to stay packed.

It also reports CPU time per accept (µs, one connection, no HTTP) of the client and of
redis-server (``INFO cpu``): the script's cost side by side. Bounded by ``--count``
(at most 2,000,000).
Results: a markdown table on stdout and ``bench/results/dedup-memory-<date>.md``.
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

from bridge import dedup, keys  # noqa: E402
from bridge.devtools.redis_server import RedisServer  # noqa: E402
from bridge.intake.store import EventStore  # noqa: E402
from bridge.providers import VerifiedEvent  # noqa: E402
from bridge.settings import DEFAULT_DEDUP_TTL  # noqa: E402

#: The accept script before bridge.dedup (commit fb87c0d), for the "before" column.
LEGACY_LUA = """
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
  return 0
end
if redis.call('SET', KEYS[1], ARGV[6], 'NX', 'EX', ARGV[1]) then
  if KEYS[5] then
    redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[1])
  end
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
  if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then
    return 2
  end
  return 1
end
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
return 0
"""

MAX_COUNT = 2_000_000


def event_id(n: int) -> str:
    """A Stripe-shaped id (``evt_`` + 24 characters), distinct per ``n``."""
    return f"evt_1Q{n:022d}"


def redis_cpu(redis: Redis) -> float:
    """CPU seconds redis-server has used (user + system)."""
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(
    redis: Redis, count: int, accept: Callable[[int], object]
) -> tuple[float, float, float]:
    """Bytes of ``used_memory`` per id, client and redis-server CPU µs per accept for
    ``count`` ids."""
    redis.flushall()
    base = int(redis.info("memory")["used_memory"])
    cpu, server = time.process_time(), redis_cpu(redis)
    for n in range(count):
        accept(n)
        if n % 10_000 == 9_999:
            redis.delete(keys.INBOX)
    cpu, server = time.process_time() - cpu, redis_cpu(redis) - server
    redis.delete(keys.INBOX, keys.INBOX_KICK, keys.METRICS)
    used = int(redis.info("memory")["used_memory"]) - base
    return used / count, cpu / count * 1e6, server / count * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--count", type=int, default=200_000, help="ids per layout")
    args = p.parse_args(argv)
    if not 1_000 <= args.count <= MAX_COUNT:
        p.error(f"--count must be 1000..{MAX_COUNT}")
    ttl = DEFAULT_DEDUP_TTL
    rows: list[tuple[str, float, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False).start()
        try:
            redis = Redis.from_url(server.url)
            info = redis.info("server")
            allocator = redis.info("memory")["mem_allocator"]
            store = EventStore(redis, ttl)
            legacy = redis.register_script(LEGACY_LUA)

            def old(n: int) -> object:
                eid = event_id(n)
                return legacy(
                    keys=[keys.dedup("stripe", eid), keys.INBOX, keys.INBOX_KICK, keys.METRICS],
                    args=[ttl, b"{}", keys.INBOX_KICK_TTL, "a", "d", repr(time.time())],
                )

            def new(n: int) -> object:
                event = VerifiedEvent(id=event_id(n), type="x", time=0.0, body={}, raw=b"{}")
                return store.accept("stripe", event)

            rows.append(("legacy (one key per id)", *measure(redis, args.count, old), "—"))
            cold = measure(redis, args.count, new)
            rows.append(("compact, first bucket (unsized)", *cold, _shards(redis)))

            def sized(n: int) -> object:
                if n == 0:
                    current = dedup.window(ttl, time.time()).current
                    redis.hset(keys.DEDUP_META, f"{current - 1}:n", args.count)
                return new(n)

            warm = measure(redis, args.count, sized)
            rows.append(("compact, steady (sized on the bucket before)", *warm, _shards(redis)))
        finally:
            server.stop()
    stamp = dt.datetime.now(dt.UTC)
    lines = [
        f"### Dedup memory, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"Redis {info['redis_version']} (allocator `{allocator}`), {args.count:,} distinct "
        f"ids per layout, window {ttl} s; `used_memory` delta after deleting the inbox. "
        f"Command: `.venv/bin/python bench/bench_dedup_memory.py --count {args.count}`",
        "",
        "| layout | bytes / id | client CPU µs / accept | Redis CPU µs / accept | shards |",
        "|---|---:|---:|---:|---|",
        *(
            f"| {name} | {b:.1f} | {us:.0f} | {server:.0f} | {shards} |"
            for name, b, us, server, shards in rows
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "bench" / "results" / f"dedup-memory-{stamp:%Y-%m-%d-%H%M%S}.md"
    out.write_text(text)
    print(f"results: {out}")
    return 0


def _shards(redis: Redis) -> str:
    """Shard count and encodings of the current bucket (from its meta and a sample)."""
    meta = {k.decode(): v.decode() for k, v in redis.hgetall(keys.DEDUP_META).items()}
    counts = [v for k, v in meta.items() if ":" not in k]
    encodings: set[str] = set()
    for i, key in enumerate(redis.scan_iter(match=f"{keys.DEDUP_SHARD_PREFIX}*:*")):
        encodings.add(str(redis.object("encoding", key)))
        if i > 50:
            break
    return f"{'/'.join(counts)} ({', '.join(sorted(encodings))})"


if __name__ == "__main__":
    raise SystemExit(main())
