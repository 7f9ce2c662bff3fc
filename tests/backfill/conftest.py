"""Fixtures for backfill, reconcile and enrichment: a local Stripe API, real payloads."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from bridge.delivery.runtime import STOPPING, Runtime, set_runtime
from bridge.devtools.collector import Collector
from bridge.settings import Settings
from tests.conftest import ROOT
from tests.signing import STRIPE_SECRET
from tests.stripe_server import API_KEY, StripeServer

#: Real Stripe payloads kept outside the repository (see its SOURCES.md).
CORPUS = ROOT.parent / "shared" / "fixtures" / "stripe-corpus" / "payloads"


def corpus(name: str, *, created: int | None = None, **changes: Any) -> dict[str, Any]:
    """A corpus payload, re-dated to ``created`` (Stripe lists only its last 30 days)."""
    event: dict[str, Any] = orjson.loads((CORPUS / f"{name}.json").read_bytes())
    event = copy.deepcopy(event)
    if created is not None:
        event["created"] = created
    event.update(changes)
    return event


def env(
    redis_url: str, api_base: str, collector_url: str = "http://127.0.0.1:9", **extra: str
) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": api_base,
        "SEGMENT_ENDPOINT": collector_url,
        "SEGMENT_WRITE_KEY": "test-write-key",
        "BRIDGE_LOG_FORMAT": "json",
        "BRIDGE_FLUSH_INTERVAL": "0.2",
        "BRIDGE_RETRY_BASE": "0.05",
        "BRIDGE_RETRY_MAX": "0.5",
        "BRIDGE_HTTP_TIMEOUT": "1",
        "STRIPE_API_TIMEOUT": "5",
        **extra,
    }


@pytest.fixture
def stripe_api() -> Iterator[StripeServer]:
    server = StripeServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(
    redis_url: str, stripe_api: StripeServer, collector: Collector
) -> Callable[..., Settings]:
    def build(**extra: str) -> Settings:
        return Settings.from_env(env(redis_url, stripe_api.url, collector.url, **extra))

    return build


@pytest.fixture
def runtime(make_settings: Callable[..., Settings]) -> Iterator[Runtime]:
    rt = Runtime(make_settings())
    set_runtime(rt)
    yield rt
    STOPPING.clear()
    set_runtime(None)
    rt.close()


@pytest.fixture
def now() -> int:
    return int(time.time())
