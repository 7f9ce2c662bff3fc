"""Each revenue provider's own sample (``bridge dev``) signs, verifies, maps, previews and
goes through ``bridge send`` to a real gunicorn."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from redis import Redis

from bridge import __version__, codec, keys
from bridge.cli import main
from bridge.envelope import Envelope
from bridge.providers import get_provider
from tests.cli.test_send import run_send
from tests.conftest import ROOT
from tests.intake.conftest import base_env
from tests.processes import gunicorn
from tests.providers.attacks import app_for, deliver
from tests.revenue_secrets import REVENUE_ENV, REVENUE_SOURCES, SQUARE_URL

#: The first call each sample maps to, by hand from the samples in bridge/providers/*.py.
FIRST_CALL = {
    "shopify": ("Order Completed", "total", 413),
    "paddle": ("Order Completed", "total", Decimal("65.32")),
    "lemonsqueezy": ("Order Completed", "total", Decimal("58.99")),
    "paystack": ("Order Completed", "total", 100),
    "razorpay": ("Order Completed", "total", 500),
    "square": ("Order Completed", "total", 10),
    "woocommerce": ("Order Completed", "total", Decimal("29.35")),
    "recurly": ("Subscription Started", "subscription_uuid", "63ab531e1d5b1d47eaf1ef44eeb853c3"),
    "chargebee": ("Order Completed", "total", 29),
    "polar": ("Order Completed", "total", 24),
}

#: What each sample's Order Completed is counted once by (the mapping's `once:` id).
COUNTED_AS: dict[str, Callable[[Any], str]] = {
    "shopify": lambda b: str(b["id"]),
    "paddle": lambda b: b["data"]["id"],
    "lemonsqueezy": lambda b: b["data"]["id"],
    "paystack": lambda b: b["data"]["reference"],
    "razorpay": lambda b: b["payload"]["payment"]["entity"]["id"],
    "square": lambda b: b["data"]["object"]["payment"]["id"],
    "woocommerce": lambda b: str(b["id"]),
    "recurly": lambda b: "(nothing counted)",
    "chargebee": lambda b: b["content"]["transaction"]["id"],
    "polar": lambda b: b["data"]["id"],
}


def dev_env(redis_url: str) -> dict[str, str]:
    """What `bridge dev` sets: each provider's development secret (Square's URL too)."""
    env = {**base_env(redis_url), "SQUARE_WEBHOOK_URL": SQUARE_URL}
    for name in REVENUE_SOURCES:
        env[f"{name.upper()}_WEBHOOK_SECRET"] = get_provider(name).dev_secret()
    return env


@pytest.mark.parametrize("name", REVENUE_SOURCES)
def test_sample_signed_by_the_provider_plugin_is_accepted_and_mapped(
    name: str, redis_url: str, redis: Redis
) -> None:
    provider = get_provider(name)
    sample = provider.sample()
    assert sample is not None
    headers = provider.sign(
        sample.body,
        provider.dev_secret(),
        now=time.time(),
        event_type=sample.event_type,
        url=SQUARE_URL,
    )
    app = app_for(redis_url, **dev_env(redis_url))
    stored, calls = deliver(app, sample.body, headers, name, redis)
    event, key, value = FIRST_CALL[name]
    assert calls[0]["event"] == event
    assert calls[0]["properties"][key] == value
    for call in calls:
        # Each sample's revenue is counted once (`once:`), named by what it counts.
        counted = call.get("event") == "Order Completed" or call["type"] == "identify"
        named = COUNTED_AS[name](orjson.loads(sample.body)) if counted else stored.id
        assert call["messageId"].startswith(f"{name}:{named}:")
        assert call.get("userId") or call.get("anonymousId")
        assert call["context"]["library"] == {"name": "bridge", "version": __version__}


@pytest.mark.parametrize("name", REVENUE_SOURCES)
def test_preview_prints_the_samples_calls(name: str, tmp_path: Path, redis_url: str) -> None:
    sample = get_provider(name).sample()
    assert sample is not None
    payload = tmp_path / f"{name}.json"
    payload.write_bytes(sample.body)
    args = ["preview", name, str(payload), "--json"]
    if sample.event_type:
        args += ["--type", sample.event_type]
    env = {
        "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
        **REVENUE_ENV,
        "REDIS_URL": redis_url,
    }
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    calls = codec.loads(result.output)  # amounts exactly, as preview prints them
    event, key, value = FIRST_CALL[name]
    assert (calls[0]["event"], calls[0]["properties"][key]) == (event, value)


def test_bridge_send_signs_every_sample_like_its_provider(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    env = dev_env(redis_url)
    sent = []
    with gunicorn(env, workers=1) as url:
        for name in REVENUE_SOURCES:
            sample = get_provider(name).sample()
            assert sample is not None
            payload = tmp_path / f"{name}.json"
            payload.write_bytes(sample.body)
            args = [name, str(payload), "--url", url]
            if sample.event_type:
                args += ["--event-type", sample.event_type]
            result = run_send(env, *args)
            assert result.returncode == 0, (name, result.stdout, result.stderr)
            assert '"status":"accepted"' in result.stdout, (name, result.stdout)
            sent.append(name)
    stored = [Envelope.decode(r) for r in redis.lrange(keys.INBOX, 0, -1)]
    assert sorted(e.source for e in stored) == sorted(sent)


def test_bridge_dev_gives_square_its_local_notification_url(redis_url: str) -> None:
    from bridge.catalogue import Catalogue
    from bridge.cli.dev import dev_variables

    env = {**base_env(redis_url), "SQUARE_WEBHOOK_SECRET": "k"}
    catalogue = Catalogue.load(ROOT / "mappings", env)
    found = dev_variables(catalogue, env, "http://127.0.0.1:8123")
    assert found == {"square": {"SQUARE_WEBHOOK_URL": "http://127.0.0.1:8123/webhooks/square"}}
    # A URL the operator set is kept.
    env["SQUARE_WEBHOOK_URL"] = SQUARE_URL
    assert dev_variables(catalogue, env, "http://127.0.0.1:8123") == {}
