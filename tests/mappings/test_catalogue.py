"""The shipped mappings: their own test cases pass, every rule has one, and the real
provider payloads in ../shared/fixtures/payloads map to spec-valid calls."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge import __version__, codec
from bridge.catalogue import Catalogue
from bridge.envelope import Envelope
from bridge.mappings import Mapping, MemoryIdentityStore
from bridge.mappings.casetests import run
from bridge.mappings.expressions import iso8601
from tests.conftest import ROOT, payload_files
from tests.revenue_secrets import REVENUE_ENV, REVENUE_SOURCES

MAPPINGS = ROOT / "mappings"
ENV = {
    "STRIPE_WEBHOOK_SECRET": "whsec_a",
    "GITHUB_WEBHOOK_SECRET": "g",
    "CLERK_WEBHOOK_SECRET": "c",
    "BRIDGE_WRITE_KEYS": "wk",
    **REVENUE_ENV,
}
SEGMENT_TYPES = {"track", "identify", "group", "page", "screen", "alias"}


@pytest.fixture(scope="module")
def shipped() -> dict[str, Mapping]:
    return Catalogue.load(MAPPINGS, ENV).mappings()


def test_every_mapping_has_test_cases_for_every_rule() -> None:
    report = run([MAPPINGS], ENV)
    failures = {f"{r.file}:{r.line} {r.name}": r.failures for r in report.results if not r.ok}
    assert not report.problems
    assert failures == {}
    assert report.untested == []
    assert {Path(r.file).name for r in report.results} == {
        "stripe.tests.yaml",
        "github.tests.yaml",
        "clerk.tests.yaml",
        *(f"{name}.tests.yaml" for name in REVENUE_SOURCES),
    }


def test_shipped_secrets_come_from_the_documented_variables(shipped: dict[str, Mapping]) -> None:
    assert {k: (m.provider, m.secrets) for k, m in shipped.items()} == {
        "stripe": ("stripe", ("whsec_a",)),
        "github": ("github", ("g",)),
        "clerk": ("standard-webhooks", ("c",)),
        "site": ("segment", ("wk",)),
        **{
            name: (name, tuple(REVENUE_ENV[f"{name.upper()}_WEBHOOK_SECRET"].split(",")))
            for name in REVENUE_SOURCES
        },
    }


def assert_spec_valid(
    call: dict[str, Any], source: str, event_id: str, once: str | None = None
) -> None:
    """``once``: the id a counted-once call is named by instead of the event."""
    assert call["type"] in SEGMENT_TYPES
    assert call.get("userId") or call.get("anonymousId")
    assert call["messageId"].startswith(f"{source}:{once or event_id}:")
    assert len(call["messageId"]) <= 100
    assert call["timestamp"].endswith("Z")
    assert call["context"]["library"] == {"name": "bridge", "version": __version__}
    if call["type"] == "track":
        assert isinstance(call["event"], str)
        assert call["event"]
    codec.dumps(call)  # encodable, exactly (amounts are Decimals)


def stripe_event(path: Path) -> tuple[Envelope, dict[str, Any]]:
    body = json.loads(path.read_text())
    event_id = f"evt_{path.stem.replace('.', '_')}"  # the shared files share one id
    return Envelope("stripe", event_id, body["type"], float(body["created"]), 0.0, body), body


STRIPE = [p for p in payload_files("stripe") + payload_files("stripe_basil")]
EXPECTED_STRIPE = {
    "stripe__checkout.session.completed.json": ["Order Completed"],
    "stripe__checkout.session.completed.payment_mode.json": ["Order Completed"],
    "stripe__charge.refunded.json": ["Order Refunded"],
    "stripe__charge.dispute.created.json": ["Order Disputed"],
    "stripe__customer.created.json": ["identify"],
    "stripe__customer.updated.json": ["identify"],
    "stripe__customer.subscription.created.json": ["Subscription Started"],
    "stripe__customer.subscription.updated.json": [],  # only `schedule` changed
    "stripe__customer.subscription.deleted.json": ["Subscription Cancelled"],
    "stripe__customer.subscription.trial_will_end.json": ["Trial Ending Soon"],
    "stripe__customer.deleted.json": ["Customer Deleted"],
    # invoice null: a payment outside Invoicing (and Checkout, unless its session claims it)
    "stripe__payment_intent.succeeded.json": ["Order Completed"],
    "stripe__invoice.paid.json": ["Order Completed"],
    "stripe_basil__invoice.paid.zulip.json": ["Order Completed"],
    "stripe__invoice.payment_failed.json": ["Payment Failed"],
    # repeats of payments counted elsewhere, or not mapped: intake answers "ignored"
    "stripe__charge.succeeded.json": None,
    "stripe__payment_intent.payment_failed.json": None,
    "stripe__invoice.payment_succeeded.json": None,
    "stripe__invoice.upcoming.json": None,
}


@pytest.mark.skipif(not STRIPE, reason="../shared/fixtures/payloads is absent")
@pytest.mark.parametrize("path", STRIPE, ids=lambda p: p.name)
def test_real_stripe_payloads(path: Path, shipped: dict[str, Mapping]) -> None:
    mapping = shipped["stripe"]
    envelope, body = stripe_event(path)
    expected = EXPECTED_STRIPE[path.name]
    if expected is None:
        assert not mapping.handles(envelope.type)
        return
    calls = mapping.evaluate(envelope, MemoryIdentityStore())
    assert [c.get("event", c["type"]) for c in calls] == expected
    obj = body["data"]["object"]
    counted = {  # the payment id an Order Completed is named by (see `once:`)
        "invoice.paid": obj.get("id"),
        "checkout.session.completed": obj.get("invoice") or obj.get("payment_intent"),
        "payment_intent.succeeded": obj.get("id"),
    }
    started = f"subscription-started:{obj.get('id')}"
    counted["customer.subscription.created"] = started  # Subscription Started, once
    for call in calls:
        once_events = ("Order Completed", "Subscription Started", "Trial Started")
        once = counted.get(envelope.type) if call.get("event") in once_events else None
        assert_spec_valid(call, "stripe", envelope.id, once)
        assert call["context"]["testMode"] is True  # these are all test-mode events
        assert call["timestamp"] == iso8601(body["created"])


@pytest.mark.skipif(not STRIPE, reason="../shared/fixtures/payloads is absent")
def test_real_stripe_numbers(shipped: dict[str, Mapping]) -> None:
    mapping = shipped["stripe"]
    by_name = {p.name: p for p in STRIPE}

    def props(name: str, **patch: Any) -> dict[str, Any]:
        envelope, body = stripe_event(by_name[name])
        body["data"]["object"].update(patch)
        calls = mapping.evaluate(envelope, MemoryIdentityStore())
        return calls[0]["properties"]  # type: ignore[no-any-return]

    session = "stripe__checkout.session.completed.json"
    assert props(session)["total"] == 30.0
    assert props(session)["currency"] == "USD"
    assert props(session, currency="jpy")["total"] == 3000
    assert props(session, currency="kwd")["total"] == 3.0
    assert props(session, currency="kwd", amount_total=3005)["total"] == Decimal("3.005")
    assert props("stripe__charge.refunded.json")["total"] == 1.0
    assert props("stripe__invoice.paid.json")["total"] == 20.0
    assert props("stripe_basil__invoice.paid.zulip.json")["total"] == 1000.0


@pytest.mark.skipif(not STRIPE, reason="../shared/fixtures/payloads is absent")
def test_real_subscription_mode_session_records_no_revenue(shipped: dict[str, Mapping]) -> None:
    path = next(iter(payload_files("stripe_object")), None)
    if path is None:
        pytest.skip("subscription-mode session fixture absent")
    obj = json.loads(path.read_text())["object"]
    body = {
        "id": "evt_submode",
        "type": "checkout.session.completed",
        "created": 1658353296,
        "livemode": False,
        "data": {"object": obj},
    }
    store = MemoryIdentityStore()
    envelope = Envelope("stripe", "evt_submode", body["type"], 1658353296.0, 0.0, body)
    assert shipped["stripe"].evaluate(envelope, store) == []


GITHUB = payload_files("github")


@pytest.mark.skipif(not GITHUB, reason="../shared/fixtures/payloads is absent")
@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_real_github_payloads(path: Path, shipped: dict[str, Mapping]) -> None:
    mapping = shipped["github"]
    body = json.loads(path.read_text())
    name = path.stem.split("__", 1)[1]
    event_type = name if "." in name or "action" not in body else f"{name}.{body['action']}"
    expected = {
        "marketplace_purchase.purchased": ["Order Completed", "identify"],
        "marketplace_purchase.cancelled": ["Subscription Cancelled"],
        "sponsorship.created": ["Sponsorship Started", "identify"],
        "push": None,
    }[event_type]
    if expected is None:
        assert not mapping.handles(event_type)
        return
    envelope = Envelope("github", f"delivery-{name}", event_type, 1700000000.0, 0.0, body)
    calls = mapping.evaluate(envelope, MemoryIdentityStore())
    assert [c.get("event", c["type"]) for c in calls] == expected
    for call in calls:
        assert_spec_valid(call, "github", envelope.id)
        assert call["userId"].startswith("github:")
    if event_type == "marketplace_purchase.purchased":
        assert calls[0]["properties"]["total"] == 10.0
    if event_type == "sponsorship.created":
        assert calls[0]["properties"]["amount"] == 5.0
