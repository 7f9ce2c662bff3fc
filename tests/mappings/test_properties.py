"""Random and hostile payloads never crash the engine: only MappingError or valid calls."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import codec
from bridge.catalogue import Catalogue
from bridge.envelope import Envelope
from bridge.errors import MappingError
from bridge.mappings import Mapping, MemoryIdentityStore
from tests.conftest import ROOT
from tests.revenue_secrets import REVENUE_ENV

ENV = {
    "STRIPE_WEBHOOK_SECRET": "a",
    "GITHUB_WEBHOOK_SECRET": "b",
    "CLERK_WEBHOOK_SECRET": "c",
    "BRIDGE_WRITE_KEYS": "wk",
    **REVENUE_ENV,
}
SHIPPED = Catalogue.load(ROOT / "mappings", ENV).mappings()
STRIPE = SHIPPED["stripe"]
STRIPE_TYPES = sorted({p for r in STRIPE.rules for p in r.patterns})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["usd", "JPY", "kwd", "xx", "", "paid", "payment", "trialing", "active"]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
KEYS = [
    "id",
    "customer",
    "currency",
    "amount_total",
    "amount_subtotal",
    "amount_paid",
    "amount_refunded",
    "status",
    "mode",
    "payment_status",
    "metadata",
    "items",
    "plan",
    "client_reference_id",
    "total_details",
    "created",
    "trial_end",
    "invoice",
    "email",
    "address",
    "cancel_at_period_end",
    "cancel_at",
    "subscription",
    "parent",
    "tax",
]
stripe_objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=12)


def check(mapping: Mapping, envelope: Envelope) -> None:
    try:
        calls = mapping.evaluate(envelope, MemoryIdentityStore())
    except MappingError as exc:
        message = exc.message
        assert message, "a MappingError must say why"
        return
    for call in calls:
        assert call.get("userId") or call.get("anonymousId")
        assert len(call["messageId"]) <= 100
        json.dumps(call, allow_nan=False)
        for key in ("total", "revenue", "amount", "subtotal", "tax"):
            value = call.get("properties", {}).get(key)
            assert value is None or (isinstance(value, int | float) and not isinstance(value, bool))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(STRIPE_TYPES),
    obj=stripe_objects,
    previous=st.one_of(st.none(), json_values),
    livemode=json_values,
    account=st.one_of(st.none(), json_values),
)
def test_hostile_stripe_objects(
    event_type: str, obj: dict[str, Any], previous: Any, livemode: Any, account: Any
) -> None:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    body = {"id": "evt_h", "type": event_type, "livemode": livemode, "data": data}
    if account is not None:
        body["account"] = account
    check(STRIPE, Envelope("stripe", "evt_h", event_type, 1700000000.0, 0.0, body))


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from(sorted(s for s, m in SHIPPED.items() if m.rules)),  # webhook sources
    body=json_values,
    event_type=st.text(max_size=30),
)
def test_any_json_body_with_any_type(source: str, body: Any, event_type: str) -> None:
    mapping = SHIPPED[source]
    types = sorted({p for r in mapping.rules for p in r.patterns})
    for kind in (event_type, types[len(event_type) % len(types)]):
        check(mapping, Envelope(source, "e", kind, 1.0, 0.0, body))


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=2**63 - 1),  # past 2**53: no float is exact
    currency=st.sampled_from(["usd", "eur", "jpy", "krw", "kwd", "bhd", "gbp"]),
)
def test_amounts_are_exact(amount: int, currency: str) -> None:
    obj = {
        "id": "cs_1",  # a session always has one: `once:` counts the payment by it
        "mode": "payment",
        "payment_status": "paid",
        "currency": currency,
        "customer": "c",
        "amount_total": amount,
        "amount_subtotal": amount,
    }
    body = {
        "id": "e",
        "type": "checkout.session.completed",
        "livemode": True,
        "data": {"object": obj},
    }
    calls = STRIPE.evaluate(
        Envelope("stripe", "e", body["type"], 1.0, 0.0, body), MemoryIdentityStore()
    )
    total = calls[0]["properties"]["total"]
    places = {"jpy": 0, "krw": 0, "kwd": 3, "bhd": 3}.get(currency, 2)
    expected = (
        str(amount) if places == 0 else f"{amount // 10**places}.{amount % 10**places:0{places}d}"
    )
    assert codec.dumps(total).decode() == expected
