"""Intake with sources switched off: 404 with its own reason, counted, shown in /readyz."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from redis import Redis

from bridge import keys
from bridge.envelope import Envelope
from tests.intake.conftest import LogLines
from tests.intake.test_health import samples
from tests.revenue_secrets import REVENUE_SOURCES
from tests.signing import (
    CLERK_SECRET,
    STRIPE_SECRET,
    clerk_event,
    standard_headers,
    stripe_event,
    stripe_headers,
)

ONLY_STRIPE = {"CLERK_WEBHOOK_SECRET": "", "GITHUB_WEBHOOK_SECRET": ""}


def test_an_off_source_answers_404_source_off_and_stores_nothing(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    client = make_app(**ONLY_STRIPE).test_client()
    body = clerk_event()
    # Even correctly signed with what would be its secret: the source is off.
    resp = client.post("/webhooks/clerk", data=body, headers=standard_headers(body, CLERK_SECRET))
    assert resp.status_code == 404
    assert resp.get_json() == {
        "error": "source 'clerk' is off: CLERK_WEBHOOK_SECRET is not set",
        "reason": "source_off",
    }
    assert redis.llen(keys.INBOX) == 0


def test_off_and_unknown_sources_are_counted_apart(make_app: Callable[..., Flask]) -> None:
    client = make_app(**ONLY_STRIPE).test_client()
    client.post("/webhooks/github", data=b"{}")
    client.post("/webhooks/github", data=b"{}")
    client.post("/webhooks/paypal", data=b"{}")
    got = samples(client.get("/metrics").get_data(as_text=True))
    rejected = "bridge_webhooks_rejected_total"
    assert got[(rejected, (("reason", "source_off"), ("source", "github")))] == 2
    assert got[(rejected, (("reason", "unknown_source"), ("source", "_unknown")))] == 1


def test_the_source_that_is_on_still_accepts(make_app: Callable[..., Flask]) -> None:
    client = make_app(**ONLY_STRIPE).test_client()
    body = stripe_event()
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "accepted"


def test_readyz_lists_sources_on_and_off_with_the_reason(make_app: Callable[..., Flask]) -> None:
    client = make_app(**ONLY_STRIPE).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["sources"] == ["stripe"]
    assert body["off"] == {
        "clerk": "CLERK_WEBHOOK_SECRET is not set",
        "github": "GITHUB_WEBHOOK_SECRET is not set",
        "site": "BRIDGE_WRITE_KEYS is not set",
        **{n: f"{n.upper()}_WEBHOOK_SECRET is not set" for n in REVENUE_SOURCES},
    }


def test_readyz_is_unavailable_when_no_source_is_on(make_app: Callable[..., Flask]) -> None:
    client = make_app(STRIPE_WEBHOOK_SECRET="", **ONLY_STRIPE).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["sources"] == []


def test_one_line_at_boot_says_which_sources_are_on_and_off(
    make_app: Callable[..., Flask], logs: LogLines
) -> None:
    make_app(**ONLY_STRIPE)
    lines = [r for r in logs.records() if r.get("event") == "sources"]
    assert len(lines) == 1
    assert lines[0]["on"] == ["stripe"]
    assert lines[0]["off"] == {
        "clerk": "CLERK_WEBHOOK_SECRET is not set",
        "github": "GITHUB_WEBHOOK_SECRET is not set",
        "site": "BRIDGE_WRITE_KEYS is not set",
        **{n: f"{n.upper()}_WEBHOOK_SECRET is not set" for n in REVENUE_SOURCES},
    }
    assert "whsec" not in logs.getvalue()


def test_two_stripe_accounts_side_by_side(
    make_app: Callable[..., Flask], redis: Redis, tmp_path: Path
) -> None:
    for region in ("us", "eu"):
        (tmp_path / f"stripe-{region}.yaml").write_text(
            f"extends: stripe\nsecrets: ${{STRIPE_{region.upper()}_WEBHOOK_SECRET}}\n"
        )
    app = make_app(
        BRIDGE_MAPPINGS_DIR=str(tmp_path),
        STRIPE_WEBHOOK_SECRET="",
        STRIPE_US_WEBHOOK_SECRET="whsec_us",
        STRIPE_EU_WEBHOOK_SECRET="whsec_eu",
    )
    client = app.test_client()
    body = stripe_event()
    us, eu = stripe_headers(body, "whsec_us"), stripe_headers(body, "whsec_eu")
    assert client.post("/webhooks/stripe-eu", data=body, headers=us).status_code == 400
    assert client.post("/webhooks/stripe-us", data=body, headers=us).get_json()["status"] == (
        "accepted"
    )
    # The same event id in the other account is its own event, not a duplicate.
    assert client.post("/webhooks/stripe-eu", data=body, headers=eu).get_json()["status"] == (
        "accepted"
    )
    assert client.post("/webhooks/stripe", data=body, headers=us).get_json()["reason"] == (
        "source_off"
    )
    sources = [Envelope.decode(raw).source for raw in redis.lrange(keys.INBOX, 0, -1)]
    assert sources == ["stripe-us", "stripe-eu"]
