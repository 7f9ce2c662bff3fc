"""Backfill throughput: events per second a backfill feeds through the pipeline.

    .venv/bin/python bench/bench_backfill.py [--events 3000] [--page-size 100]

Starts a private redis-server, the local Stripe API server of the tests in a process of
its own (tests/stripe_server.py, real corpus payloads from ../shared/fixtures with fresh ids and
recent ``created``) and the local collector, all on 127.0.0.1. Then, side by side:

* ``accept floor``: the same events fed straight into ``EventStore.accept`` (no API):
  the most a feed through intake's dedup can do;
* ``listing only``: the same pages listed and parsed, nothing fed (the API's share);
* ``backfill``: ``Backfill.run`` (the ``bridge backfill`` engine) listing every page
  through the official SDK and feeding each event: events/s listed and made durable;
* ``backfill + delivery``: the same again on a flushed Redis, then one in-process drain
  until the collector has every call: events/s from the first list request to the last
  call at the collector.

Bounded: at most 20,000 events, each phase at most 120 s; every server it starts is
stopped in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bridge`` and ``tests`` importable
    sys.path.insert(0, str(ROOT))

from bridge.backfill import Backfill  # noqa: E402
from bridge.catalogue import Catalogue  # noqa: E402
from bridge.delivery import jobs  # noqa: E402
from bridge.delivery.runtime import Runtime, set_runtime  # noqa: E402
from bridge.devtools.collector import Collector  # noqa: E402
from bridge.devtools.redis_server import RedisServer  # noqa: E402
from bridge.intake.store import EventStore  # noqa: E402
from bridge.providers import VerifiedEvent  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from tests.stripe_server import API_KEY  # noqa: E402

CORPUS = ROOT.parent / "shared" / "fixtures" / "stripe-corpus" / "payloads"
#: Mapped payloads (one call each) and one no rule handles, in rotation.
NAMES = [
    "inv_paid_basil_subscription_create",
    "co_payment_paid_userid_2022",  # carries its line_items: no extra API call
    "cus_created_with_user_id_derived",
    "inv_payment_failed_2025",
    "payment_intent_succeeded_2020_unmapped",
]
MAX_EVENTS = 20_000
PHASE_LIMIT = 120.0


def events(n: int, now: int) -> list[dict[str, Any]]:
    bodies = [orjson.loads((CORPUS / f"{name}.json").read_bytes()) for name in NAMES]
    out = []
    for i in range(n):
        event = dict(bodies[i % len(bodies)])
        event["id"] = f"evt_bench_{i:06d}"
        event["created"] = now - 60 - i % 80_000
        out.append(event)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    n = min(args.events, MAX_EVENTS)
    now = int(time.time())
    corpus = events(n, now)
    mapped = sum(1 for i in range(n) if "unmapped" not in NAMES[i % len(NAMES)])

    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer(Path(tmp)).start()
        # The API server runs in a process of its own: its JSON work must not compete
        # with bridge for this process's GIL.
        events_file = Path(tmp) / "events.jsonl"
        events_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in corpus))
        api_process = subprocess.Popen(
            [sys.executable, "-m", "tests.stripe_server", str(events_file)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        collector = Collector(write_key="bench").start()
        try:
            assert api_process.stdout is not None
            api_url = api_process.stdout.readline().strip()
            assert api_url.startswith("http://127.0.0.1:"), api_url
            settings = Settings.from_env(
                {
                    "REDIS_URL": redis_server.url,
                    "STRIPE_WEBHOOK_SECRET": "whsec_bench",
                    "STRIPE_API_KEY": API_KEY,
                    "STRIPE_API_BASE": api_url,
                    "SEGMENT_ENDPOINT": collector.url,
                    "SEGMENT_WRITE_KEY": "bench",
                    "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
                    "BRIDGE_LOG_LEVEL": "warning",
                    "BRIDGE_LOG_FORMAT": "json",
                }
            )
            from bridge import log

            log.configure(settings)
            runtime = Runtime(settings)
            set_runtime(runtime)
            redis = runtime.redis
            source = Catalogue.from_settings(settings).get("stripe")
            assert source is not None

            # 1. The floor: accept() without the API.
            redis.flushdb()
            store = EventStore(redis, settings.dedup_ttl)
            started = time.perf_counter()
            for event in corpus:
                if source.mapping.handles(event["type"]):
                    raw = orjson.dumps(event)
                    store.accept(
                        "stripe",
                        VerifiedEvent(
                            event["id"], event["type"], float(event["created"]), event, raw
                        ),
                    )
            floor = n / (time.perf_counter() - started)

            # 2. Backfill: list + feed.
            redis.flushdb()
            from bridge.stripe_api import StripeApi

            api = StripeApi.from_settings(settings)
            job = Backfill(api, store, source, redis, page_size=args.page_size)
            started = time.perf_counter()
            plan = job.plan(
                since=now - 2 * 86400,
                until=None,
                types=(),
                account=None,
                dedup_ttl=settings.dedup_ttl,
            )
            done = job.run(plan)
            feed = n / (time.perf_counter() - started)
            assert done.done, done.counts
            assert done.counts.listed == n, done.counts

            # 2b. Listing alone (the API's share: SDK, HTTP, the local server's JSON).
            started = time.perf_counter()
            listed = sum(
                len(p.events) for p in api.iter_events(gte=now - 2 * 86400, limit=args.page_size)
            )
            listing = listed / (time.perf_counter() - started)

            # 3. Backfill + mapping + delivery to the collector.
            redis.flushdb()
            collector.reset()
            started = time.perf_counter()
            job.run(
                job.plan(
                    since=now - 2 * 86400,
                    until=None,
                    types=(),
                    account=None,
                    dedup_ttl=settings.dedup_ttl,
                    restart=True,
                )
            )
            deadline = time.monotonic() + PHASE_LIMIT
            while len(collector.calls) < mapped and time.monotonic() < deadline:
                jobs.drain(runtime, budget=5)
                runtime.flusher.flush()
                if len(collector.calls) < mapped:
                    time.sleep(0.05)
            e2e = n / (time.perf_counter() - started)
            delivered = len({c["messageId"] for c in collector.calls})
        finally:
            set_runtime(None)
            collector.stop()
            api_process.send_signal(signal.SIGTERM)
            try:
                api_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                api_process.kill()
                api_process.wait(timeout=10)
            redis_server.stop()

    print(f"events: {n} ({mapped} mapped to one call each), page size {args.page_size}")
    print(f"{'phase':<22} {'events/s':>10} {'vs floor':>9}")
    phases = (
        ("accept floor", floor),
        ("listing only", listing),
        ("backfill", feed),
        ("backfill + delivery", e2e),
    )
    for name, rate in phases:
        print(f"{name:<22} {rate:>10.0f} {rate / floor:>8.2f}x")
    print(f"calls at the collector: {delivered} distinct of {mapped} expected")


if __name__ == "__main__":
    main()
