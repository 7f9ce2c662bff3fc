"""Signature verification cost per provider, in µs, beside Stripe's.

Each provider's ``verify()`` (header parsing, HMAC over the raw body, constant-time
compare, JSON parse of the verified body, event id/type/time) runs on a ~3 KB body signed
by the provider's own ``sign()``, one secret configured. Interleaved rounds, the median
per provider, and the ratio to Stripe: the machine is shared, compare ratios.

    .venv/bin/python -m bench.bench_verify [--rounds 7] [--number 2000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import timeit
from datetime import UTC, datetime

import orjson

from bridge.providers import get_provider

PROVIDERS = [
    "stripe",
    "standard-webhooks",
    "github",
    "shopify",
    "paddle",
    "lemonsqueezy",
    "paystack",
    "razorpay",
    "square",
    "woocommerce",
    "recurly",
    "chargebee",
    "polar",
]
URL = "https://bridge.example.com/webhooks/square"


def _padded(body: bytes, size: int = 3000) -> bytes:
    """The sample with a filler member, so every provider verifies ~``size`` bytes."""
    event = orjson.loads(body)
    compact = len(orjson.dumps(event)) + len(',"bench_padding":""')
    event["bench_padding"] = "x" * max(0, size - compact)
    return orjson.dumps(event)


def setup(name: str) -> tuple[object, bytes, dict[str, str], list[str]]:
    provider = get_provider(name)
    sample = provider.sample()
    assert sample is not None, name
    body = _padded(sample.body)
    secret = provider.dev_secret()
    headers = provider.sign(body, secret, now=time.time(), event_type=sample.event_type, url=URL)
    return provider, body, headers, [secret]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    cases = {name: setup(name) for name in PROVIDERS}
    samples: dict[str, list[float]] = {name: [] for name in PROVIDERS}
    for _ in range(args.rounds):
        for name, (provider, body, headers, secrets) in cases.items():

            def once(p=provider, b=body, h=headers, s=secrets) -> None:  # type: ignore[no-untyped-def]
                p.verify(b, h, s, tolerance=300, now=time.time(), url=URL)  # type: ignore[attr-defined]

            once()  # fails loudly if the signature does not verify
            seconds = timeit.timeit(once, number=args.number)
            samples[name].append(seconds / args.number * 1e6)
    stripe = statistics.median(samples["stripe"])
    print(
        f"# verify() per provider, ~3 KB body — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{args.rounds} rounds x {args.number}"
    )
    print("| provider | body bytes | median µs | ratio to Stripe |")
    print("| --- | --- | --- | --- |")
    for name in PROVIDERS:
        median = statistics.median(samples[name])
        size = len(cases[name][1])
        print(f"| {name} | {size} | {median:.1f} | {median / stripe:.2f}x |")


if __name__ == "__main__":
    main()
