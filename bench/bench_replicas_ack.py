"""What ``BRIDGE_REPLICAS_ACK`` costs: accepts with and without ``WAIT`` for a replica.

    .venv/bin/python bench/bench_replicas_ack.py [--count 20000] [--rounds 3]

Starts a private primary and one replica (``redis-server``, append-only everysec as in
production, on 127.0.0.1) and runs ``--count`` accepts of distinct events through
``EventStore.accept`` (the real script; no HTTP, one connection) with
``replicas_ack`` 0 and 1, alternating, ``--rounds`` times. Reports accepts per second and
the p50 / p99 latency of one accept (ms). Bounded by ``--count`` (at most 200,000) and
``--rounds`` (at most 10); both servers are stopped by PID in ``finally``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge import keys  # noqa: E402
from bridge.devtools.redis_server import RedisServer  # noqa: E402
from bridge.intake.store import EventStore  # noqa: E402
from bridge.providers import VerifiedEvent  # noqa: E402
from bridge.settings import DEFAULT_DEDUP_TTL  # noqa: E402


def run(store: EventStore, redis: Redis, count: int, tag: str) -> tuple[float, float, float]:
    """Accepts/s, p50 ms, p99 ms for ``count`` distinct events."""
    raw = b'{"id": "evt", "object": "event"}' * 90  # ~3 KB, like a Stripe event
    latencies = []
    started = time.perf_counter()
    for n in range(count):
        event = VerifiedEvent(id=f"evt_{tag}_{n}", type="x", time=0.0, body={}, raw=raw)
        t = time.perf_counter()
        store.accept("stripe", event)
        latencies.append(time.perf_counter() - t)
        if n % 5000 == 4999:
            redis.delete(keys.INBOX)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return (
        count / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if not 1_000 <= args.count <= 200_000 or not 1 <= args.rounds <= 10:
        p.error("--count 1000..200000, --rounds 1..10")
    results: dict[int, list[tuple[float, float, float]]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory(prefix="bench-wait-") as tmp:
        primary = RedisServer(Path(tmp) / "primary").start()
        replica = RedisServer(Path(tmp) / "replica").start()
        try:
            redis = Redis.from_url(primary.url)
            rclient = Redis.from_url(replica.url)
            rclient.replicaof("127.0.0.1", str(primary.port))
            deadline = time.monotonic() + 30
            while rclient.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("replica did not sync")
                time.sleep(0.05)
            for rnd in range(args.rounds):
                for ack in (0, 1) if rnd % 2 == 0 else (1, 0):
                    redis.flushall()
                    store = EventStore(redis, DEFAULT_DEDUP_TTL, replicas_ack=ack)
                    results[ack].append(run(store, redis, args.count, f"{rnd}{ack}"))
                    rps, p50, p99 = results[ack][-1]
                    print(
                        f"round {rnd + 1} replicas_ack={ack}: {rps:.0f}/s p50 {p50:.3f} ms "
                        f"p99 {p99:.3f} ms",
                        flush=True,
                    )
        finally:
            replica.stop()
            primary.stop()
    lines = [
        f"`.venv/bin/python bench/bench_replicas_ack.py --count {args.count} "
        f"--rounds {args.rounds}` (one connection, no HTTP; medians over rounds)",
        "",
        "| BRIDGE_REPLICAS_ACK | accepts/s | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|",
    ]
    for ack, rows in results.items():
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        lines.append(f"| {ack} | {med[0]:.0f} | {med[1]:.3f} | {med[2]:.3f} |")
    ratio = statistics.median(r[0] for r in results[1]) / statistics.median(
        r[0] for r in results[0]
    )
    lines.append("")
    lines.append(f"with WAIT ÷ without: {ratio:.2f}x accepts/s")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
