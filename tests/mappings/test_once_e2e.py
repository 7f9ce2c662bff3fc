"""One payment end to end: signed webhooks into the real intake app, a drain job, the
local collector. However its events arrive, one Order Completed reaches Segment, and its
refund carries the same order_id and user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge import codec
from bridge.delivery import jobs
from bridge.delivery.runtime import Runtime, set_runtime
from bridge.devtools.collector import Collector
from bridge.intake import create_app
from bridge.settings import Settings
from tests.conftest import ROOT
from tests.delivery import support
from tests.processes import wait_until
from tests.signing import STRIPE_SECRET, stripe_headers


@pytest.fixture
def env(redis_url: str, collector: Collector) -> dict[str, str]:
    return support.env(
        redis_url,
        collector.url,
        mappings=ROOT / "mappings",
        STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        GITHUB_WEBHOOK_SECRET="g",
        CLERK_WEBHOOK_SECRET="c",
    )


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[FlaskClient]:
    app = create_app(Settings.from_env(env))
    app.testing = True
    with app.test_client() as c:
        yield c


@pytest.fixture
def runtime(env: dict[str, str]) -> Iterator[Runtime]:
    made = Runtime(Settings.from_env(env))
    set_runtime(made)
    yield made
    set_runtime(None)
    made.close()


def event(event_id: str, event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": 1700000000,
            "livemode": True,
            "data": {"object": obj},
        }
    ).encode()


SESSION = event(
    "evt_e2e_session",
    "checkout.session.completed",
    {
        "id": "cs_e2e",
        "mode": "payment",
        "payment_status": "paid",
        "payment_intent": "pi_e2e",
        "invoice": None,
        "customer": "cus_e2e",
        "client_reference_id": "user_e2e",
        "currency": "eur",
        "amount_subtotal": 5000,
        "amount_total": 5950,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 950},
    },
)
INTENT = event(
    "evt_e2e_intent",
    "payment_intent.succeeded",
    {
        "id": "pi_e2e",
        "status": "succeeded",
        "amount": 5950,
        "amount_received": 5950,
        "currency": "eur",
        "customer": "cus_e2e",
        "invoice": None,
    },
)
REFUND = event(
    "evt_e2e_refund",
    "charge.refunded",
    {
        "id": "ch_e2e",
        "customer": "cus_e2e",
        "payment_intent": "pi_e2e",
        "invoice": None,
        "amount": 5950,
        "amount_refunded": 1190,
        "currency": "eur",
    },
)


def post(client: FlaskClient, body: bytes) -> str:
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return str(resp.get_json()["status"])


@pytest.mark.parametrize("first", [SESSION, INTENT], ids=["session-first", "intent-first"])
def test_one_payment_reaches_segment_once_and_its_refund_joins_it(
    client: FlaskClient, runtime: Runtime, collector: Collector, first: bytes
) -> None:
    second = INTENT if first is SESSION else SESSION
    assert post(client, first) == "accepted"
    jobs.drain(runtime)
    assert post(client, second) == "accepted"
    assert post(client, first) == "duplicate"  # Stripe's retry of the same event
    jobs.drain(runtime)
    assert post(client, REFUND) == "accepted"
    jobs.drain(runtime)

    def delivered() -> bool:
        jobs.sweep(runtime)  # sends what the flush interval has made due
        return len(collector.calls) >= 2

    wait_until(delivered, timeout=10)
    runtime.flusher.flush()  # nothing else is waiting to be sent
    assert runtime.redis.llen("bridge:inbox") == 0
    calls = [codec.loads(codec.dumps(c)) for c in collector.calls]
    events = [c["event"] for c in calls]
    assert events == ["Order Completed", "Order Refunded"]
    completed, refunded = calls
    # By hand: 59.50 EUR paid of which 9.50 VAT; the refund is 11.90 of it.
    assert completed["properties"]["total"] == Decimal("59.50")
    assert completed["properties"]["order_id"] == "pi_e2e"
    if first is SESSION:
        assert completed["properties"]["revenue"] == Decimal("50.00")
    else:  # a PaymentIntent does not say what of it is tax: no revenue rather than 59.50
        assert "revenue" not in completed["properties"]
    assert completed["messageId"] in (
        "stripe:pi_e2e:0",
        "stripe:pi_e2e:0",
    )
    assert refunded["properties"]["order_id"] == "pi_e2e"
    assert refunded["properties"]["total"] == Decimal("11.90")
    # The session taught the user before or after the intent counted: the refund, mapped
    # last, knows the user either way; the order carries it when the session came first.
    assert refunded["userId"] == "user_e2e"
    if first is SESSION:
        assert completed["userId"] == "user_e2e"
    else:
        assert completed["anonymousId"] == "stripe:cus_e2e"
