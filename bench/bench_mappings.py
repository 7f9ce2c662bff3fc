"""Micro-benchmark: Mapping.evaluate() per rule on real payloads, in µs per event.

Run: python bench/bench_mappings.py [--repeat N]
Uses ../shared/fixtures/payloads when present (else the shipped test cases' events),
an in-memory identity store (no Redis round trip: that is measured elsewhere), and
also times load (compile) of all shipped mappings and the handles() check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bridge.catalogue import Catalogue
from bridge.envelope import Envelope
from bridge.mappings import MemoryIdentityStore

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT.parent / "shared" / "fixtures" / "payloads"
ENV = {"STRIPE_WEBHOOK_SECRET": "a", "GITHUB_WEBHOOK_SECRET": "b", "CLERK_WEBHOOK_SECRET": "c"}


def timed(fn: Any, number: int) -> float:
    """Best-of-5 mean seconds per call."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000, help="calls per timing run")
    args = parser.parse_args()

    load_s = timed(lambda: Catalogue.load(ROOT / "mappings", ENV).mappings(), 20)
    mappings = Catalogue.load(ROOT / "mappings", ENV).mappings()
    stripe = mappings["stripe"]
    rows: list[tuple[str, str, int, float]] = []
    files = sorted(PAYLOADS.glob("stripe*__*.json")) if PAYLOADS.is_dir() else []
    for path in files:
        body = json.loads(path.read_text())
        if "type" not in body or not stripe.handles(body["type"]):
            continue
        body["data"]["object"].setdefault("metadata", {})
        envelope = Envelope("stripe", "evt_bench", body["type"], float(body["created"]), 0.0, body)
        store = MemoryIdentityStore()
        calls = stripe.evaluate(envelope, store)
        rules = ",".join(r.name for r in stripe.rules_for(body["type"]))
        seconds = timed(lambda e=envelope, s=store: stripe.evaluate(e, s), args.repeat)
        rows.append((path.name, rules, len(calls), seconds))
    handles_s = timed(lambda: stripe.handles("customer.subscription.updated"), 100_000)
    miss_s = timed(lambda: stripe.handles("charge.succeeded"), 100_000)

    print(f"{'payload':<52} {'calls':>5} {'µs/event':>9}  rules")
    for name, rules, count, seconds in rows:
        print(f"{name:<52} {count:>5} {seconds * 1e6:>9.1f}  {rules}")
    if rows:
        print(f"{'median':<52} {'':>5} {statistics.median(r[3] for r in rows) * 1e6:>9.1f}")
    else:
        print("(no payloads found under ../shared/fixtures/payloads)")
    print(
        f"handles() hit {handles_s * 1e9:.0f} ns, miss {miss_s * 1e9:.0f} ns; "
        f"load+compile of {len(mappings)} mappings {load_s * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
