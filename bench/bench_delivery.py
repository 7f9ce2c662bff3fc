"""Calls/s from bridge's durable Redis buffer vs segment-analytics-python (in memory).

One command, bounded in count and time, side by side in one run::

    .venv/bin/python bench/bench_delivery.py [--calls 50000] [--rounds 3]

Both send the same calls to the same local collector (``python -m bridge.devtools.collector``
in its own process, so it does not share the sender's GIL), on 127.0.0.1 only:

* ``segment (memory)``: ``analytics.Client(...).track()`` x N, then ``flush()``.
* ``bridge buffer->collector``: N calls already durable in the outbox, drained by one
  process's :class:`~bridge.delivery.flusher.Flusher` (what a worker does).
* ``bridge client (durable)``: ``Client.track()`` x N (each call durable in Redis when
  it returns) then ``flush()``: the whole path, for the record.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bridge.delivery import Client
from bridge.delivery.flusher import Flusher
from bridge.delivery.outbox import Outbox, encode_items
from bridge.delivery.sender import Sender
from bridge.devtools.redis_server import RedisServer, free_port
from bridge.settings import Settings

WRITE_KEY = "bench-write-key"


def call(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user_{i % 997}",
        "messageId": f"bench:{i}",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "properties": {"order_id": f"ord_{i}", "revenue": 19.99, "currency": "USD"},
        "context": {"library": {"name": "bridge", "version": "0.1.0"}},
    }


class RemoteCollector:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.devtools.collector",
                "--port",
                str(self.port),
                "--quiet",
            ],
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/stats", timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("collector did not start")

    def stats(self, fast: bool = False) -> dict[str, Any]:
        url = f"{self.url}/stats?fast" if fast else f"{self.url}/stats"
        return dict(httpx.get(url, timeout=5).json())

    def reset(self) -> None:
        httpx.post(f"{self.url}/control", json={"mode": "reset"}, timeout=5)

    def wait(self, calls: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats(fast=True)
            if st["calls"] >= calls or time.monotonic() > deadline:
                return {**st, "distinct": self.stats()["distinct"]}
            time.sleep(0.01)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_segment(collector: RemoteCollector, n: int, gzip: bool) -> dict[str, Any]:
    from segment.analytics import Client as SegmentClient

    collector.reset()
    client = SegmentClient(
        WRITE_KEY, host=collector.url, max_queue_size=n + 1, gzip=gzip, upload_size=100
    )
    started = time.perf_counter()
    for i in range(n):
        c = call(i)
        client.track(c["userId"], c["event"], c["properties"], message_id=c["messageId"])
    client.flush()
    st = collector.wait(n, timeout=120)
    elapsed = time.perf_counter() - started
    client.shutdown()
    return {"elapsed": elapsed, **st}


def run_buffer(
    collector: RemoteCollector, settings: Settings, redis: Any, n: int
) -> dict[str, Any]:
    collector.reset()
    redis.flushdb()
    outbox = Outbox(redis)
    items, _ = encode_items((call(i) for i in range(n)), time.time())
    for start in range(0, n, 5000):
        outbox.append(items[start : start + 5000])
    key = settings.segment_write_key
    sender = Sender(
        settings.collector_batch_url,
        key.get_secret_value() if key else None,
        timeout=10,
        gzip_body=settings.gzip,
    )
    flusher = Flusher(redis, settings, sender)
    started = time.perf_counter()
    while flusher.flush(force=True, max_seconds=120).batches:
        pass
    st = collector.wait(n, timeout=120)
    elapsed = time.perf_counter() - started
    sender.close()
    return {"elapsed": elapsed, **st}


def run_client(
    collector: RemoteCollector, settings: Settings, redis: Any, n: int
) -> dict[str, Any]:
    collector.reset()
    redis.flushdb()
    client = Client(settings, redis=redis)
    started = time.perf_counter()
    for i in range(n):
        c = call(i)
        client.track(c["userId"], c["event"], c["properties"], message_id=c["messageId"])
    while client.flush().batches:
        pass
    st = collector.wait(n, timeout=120)
    elapsed = time.perf_counter() - started
    client.sender.close()
    return {"elapsed": elapsed, **st}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--calls", type=int, default=50_000, help="calls per run (max 200000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (max 10)")
    p.add_argument("--flush-at", type=int, default=None, help="BRIDGE_FLUSH_AT (default: shipped)")
    p.add_argument("--gzip", choices=["on", "off", "both"], default="both")
    args = p.parse_args()
    n = min(args.calls, 200_000)
    from bridge import log

    log.configure(Settings.from_env({}, log_level="warning"))
    rounds = min(args.rounds, 10)
    collector = RemoteCollector()
    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    server = RedisServer(tmp / "redis").start()
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        from redis import Redis

        redis = Redis.from_url(server.url)
        gzips = {"on": [True], "off": [False], "both": [False, True]}[args.gzip]
        for _ in range(rounds):
            for gz in gzips:
                overrides: dict[str, Any] = {
                    "redis_url": server.url,
                    "segment_endpoint": collector.url,
                    "segment_write_key": WRITE_KEY,
                    "gzip": gz,
                }
                if args.flush_at:
                    overrides["flush_at"] = args.flush_at
                settings = Settings.from_env({}, **overrides)
                tag = f"gzip={'on' if gz else 'off'}"
                rows.setdefault(f"segment (memory) {tag}", []).append(run_segment(collector, n, gz))
                rows.setdefault(f"bridge buffer->collector {tag}", []).append(
                    run_buffer(collector, settings, redis, n)
                )
                if gz == gzips[0]:
                    rows.setdefault(f"bridge client (durable) {tag}", []).append(
                        run_client(collector, settings, redis, n)
                    )
    finally:
        server.stop()
        collector.stop()
    print(
        f"\n{n} calls per run, {rounds} round(s), median of rounds; flush_at="
        f"{args.flush_at or Settings.model_fields['flush_at'].default}\n"
    )
    head = ("sender", "calls/s", "requests", "req/call", "lost", "vs segment")
    print("| {:<34} | {:>9} | {:>8} | {:>9} | {:>4} | {:>10} |".format(*head))
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 10}|{'-' * 11}|{'-' * 6}|{'-' * 12}|")
    medians = {}
    for name, runs in rows.items():
        medians[name] = statistics.median(n / r["elapsed"] for r in runs)
    for name, runs in rows.items():
        tag = name.rsplit(" ", 1)[1]
        base = medians.get(f"segment (memory) {tag}")
        last = runs[-1]
        ratio = medians[name] / base if base else float("nan")
        lost = n - last["distinct"]
        print(
            f"| {name:<34} | {medians[name]:>9,.0f} | {last['accepted_requests']:>8} | "
            f"{last['accepted_requests'] / n:>9.5f} | {lost:>4} | {ratio:>9.2f}x |"
        )


if __name__ == "__main__":
    main()
