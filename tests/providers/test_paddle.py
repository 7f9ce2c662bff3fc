"""Paddle Billing: the attack table, Paddle's published signed vectors, and the real
payloads (../shared/fixtures/payloads) through intake and the shipped mapping."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from redis import Redis

from bridge.errors import SignatureError, TimestampOutOfTolerance
from bridge.providers.paddle import PaddleProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS, payload_files
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import PADDLE_SECRET

NEXT = "pdl_ntfset_01next_rotatedSecretKey9876543210zyxwvutsrq"


def make_body() -> bytes:
    return orjson.dumps(
        {
            "event_id": f"evt_{uuid.uuid4().hex[:26]}",
            "event_type": "transaction.completed",
            "occurred_at": "2026-11-01T10:00:00.000000Z",
            "notification_id": f"ntf_{uuid.uuid4().hex[:26]}",
            "data": {
                "id": f"txn_{uuid.uuid4().hex[:26]}",
                "currency_code": "USD",
                "customer_id": "ctm_1",
                "custom_data": {"user_id": "user_42"},
                "details": {
                    "totals": {
                        "subtotal": "1000",
                        "discount": "0",
                        "tax": "0",
                        "grand_total": "1000",
                    }
                },
            },
        }
    )


class TestPaddleAttacks(AttackTable):
    case = Case(
        source="paddle",
        env_var="PADDLE_WEBHOOK_SECRET",
        secret=PADDLE_SECRET,
        next_secret=NEXT,
        make_body=make_body,
        sign=lambda body, secret, ts: signing.paddle(body, secret, ts),
        signature_header="Paddle-Signature",
        timestamped=True,
    )


# ---- Paddle's own signed test vectors (paddle-python-sdk tests) ------------------------

VECTOR_SECRET = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"
VECTORS = [
    (
        "paddle_billing__customer.created.signed_vector.json",
        "ts=1710498758;h1=558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744",
        1710498758,
    ),
    (
        "paddle_billing__customer.created.signed_vector_unicode.json",
        "ts=1710498288;h1=38219b3ba1578184e625c29d201a27cd25bd69e2ec9c3ab87dcb90d87ff73a41",
        1710498288,
    ),
]
present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")


@present
@pytest.mark.parametrize(("name", "header", "ts"), VECTORS, ids=["standard", "unicode"])
def test_published_vector_verifies_and_fails_on_one_byte(name: str, header: str, ts: int) -> None:
    # The SDK's test strips the file's final newline: the signed bytes are without it.
    body = (PAYLOADS / name).read_bytes().rstrip(b"\n")
    provider = PaddleProvider()
    event = provider.verify(
        body, {"Paddle-Signature": header}, [VECTOR_SECRET], tolerance=5, now=ts + 1
    )
    assert event.type == "customer.created"
    assert event.id == orjson.loads(body)["event_id"]
    changed = body[:40] + bytes([body[40] ^ 1]) + body[41:]
    with pytest.raises(SignatureError) as info:
        provider.verify(
            changed, {"Paddle-Signature": header}, [VECTOR_SECRET], tolerance=5, now=ts + 1
        )
    assert info.value.reason == "bad_signature"
    # The vector is from 2024: with a tolerance it is stale today.
    with pytest.raises(TimestampOutOfTolerance):
        provider.verify(
            body, {"Paddle-Signature": header}, [VECTOR_SECRET], tolerance=300, now=time.time()
        )


def test_several_h1_any_one_may_match() -> None:
    body = make_body()
    good = signing.paddle(body, PADDLE_SECRET, 1_700_000_000)["Paddle-Signature"]
    other = signing.paddle(body, NEXT, 1_700_000_000)["Paddle-Signature"].split(";")[1]
    header = good.replace(";h1=", f";{other};h1=")  # ts=..;h1=<other>;h1=<good>
    event = PaddleProvider().verify(
        body, {"Paddle-Signature": header}, [PADDLE_SECRET], tolerance=300, now=1_700_000_001
    )
    assert event.time == 1793527200.0  # occurred_at, not ts


def test_two_ts_elements_are_malformed() -> None:
    body = make_body()
    header = signing.paddle(body, PADDLE_SECRET, 1_700_000_000)["Paddle-Signature"]
    with pytest.raises(SignatureError) as info:
        PaddleProvider().verify(
            body, {"Paddle-Signature": f"ts=1;{header}"}, [PADDLE_SECRET], tolerance=0, now=0
        )
    assert info.value.reason == "malformed_signature"


def test_signer_matches_the_documented_scheme() -> None:
    body = make_body()
    ours = PaddleProvider().sign(body, PADDLE_SECRET, now=1_700_000_000)
    assert (
        ours["Paddle-Signature"]
        == signing.paddle(body, PADDLE_SECRET, 1_700_000_000)["Paddle-Signature"]
    )


# ---- real payloads through intake and the shipped mapping -----------------------------

REAL = payload_files("paddle_billing")


@present
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_payload_is_accepted_when_signed(
    path: Path, redis_url: str, redis: Redis
) -> None:
    body = path.read_bytes()
    event = orjson.loads(body)
    app = app_for(redis_url)
    # The captures are from 2023-2024: sign them now, as a redelivery would be.
    stored, calls = deliver(app, body, signing.paddle(body, PADDLE_SECRET), "paddle", redis)
    if calls or stored.type:
        assert stored.id == event["event_id"]
    for call in calls:
        assert call.get("userId") or call.get("anonymousId")
        # Revenue and refunds are counted once by their transaction / adjustment id.
        counted = call.get("event") in ("Order Completed", "Order Refunded")
        named = event["data"]["id"] if counted else event["event_id"]
        assert call["messageId"].startswith(f"paddle:{named}:")


@present
def test_real_completed_transaction_numbers(redis_url: str, redis: Redis) -> None:
    body = (PAYLOADS / "paddle_billing__transaction.completed.simulator.json").read_bytes()
    _, calls = deliver(
        app_for(redis_url), body, signing.paddle(body, PADDLE_SECRET), "paddle", redis
    )
    [call] = calls
    assert call["event"] == "Order Completed"
    assert call["anonymousId"] == "paddle:ctm_01j7br89shp7xpaenx22h8qetw"  # custom_data null
    assert call["timestamp"] == "2024-09-09T16:01:32.124Z"  # occurred_at
    assert call["messageId"] == "paddle:txn_01j7br78cgr083zqw1jhqym40s:0"  # once: data.id
    p = call["properties"]
    assert p["order_id"] == "txn_01j7br78cgr083zqw1jhqym40s"
    # totals: subtotal "59900", discount "0", tax "5315", grand_total "65215" (USD cents)
    assert (p["total"], p["subtotal"], p["revenue"], p["tax"], p["discount"]) == (
        Decimal("652.15"),
        599,
        599,
        Decimal("53.15"),
        0,
    )
    assert p["currency"] == "USD"
    assert p["subscription_id"] == "sub_01j7br9jpk4rmmcd5crn2th1bq"
    assert p["invoice_number"] == "325-11889"
    # 10 seats x 30.00, 1 add-on x 100.00, 1 one-time add-on x 199.00 = 599.00
    assert [(x["sku"], x["quantity"], x["price"]) for x in p["products"]] == [
        ("pri_01gsz8x8sawmvhz1pv30nge1ke", 10, 30),
        ("pri_01h1vjfevh5etwq3rb416a23h2", 1, 100),
        ("pri_01gsz98e27ak2tyhexptwc58yk", 1, 199),
    ]
    assert sum(x["price"] * x["quantity"] for x in p["products"]) == 599


@present
def test_real_refund_adjustment_pending_approval_is_not_a_refund_yet(
    redis_url: str, redis: Redis
) -> None:
    body = (PAYLOADS / "paddle_billing__adjustment.created.simulator.json").read_bytes()
    stored, calls = deliver(
        app_for(redis_url), body, signing.paddle(body, PADDLE_SECRET), "paddle", redis
    )
    assert stored.type == "adjustment.created"
    assert calls == []
    # Approved, the same adjustment is an Order Refunded of 108.87 for its transaction.
    approved = orjson.loads(body)
    approved["event_id"] = "evt_approved"
    approved["event_type"] = "adjustment.updated"
    approved["data"]["status"] = "approved"
    raw = orjson.dumps(approved)
    _, calls = deliver(app_for(redis_url), raw, signing.paddle(raw, PADDLE_SECRET), "paddle", redis)
    [call] = calls
    assert call["event"] == "Order Refunded"
    assert call["properties"]["order_id"] == "txn_01j7br78cgr083zqw1jhqym40s"
    assert call["properties"]["total"] == Decimal("108.87")  # totals.total "10887" cents
    assert call["anonymousId"] == "paddle:ctm_01j7br89shp7xpaenx22h8qetw"


@present
def test_real_subscription_created_is_started_with_its_recurring_amount(
    redis_url: str, redis: Redis
) -> None:
    body = (PAYLOADS / "paddle_billing__subscription.created.simulator.json").read_bytes()
    _, calls = deliver(
        app_for(redis_url), body, signing.paddle(body, PADDLE_SECRET), "paddle", redis
    )
    [call] = calls
    assert call["event"] == "Subscription Started"
    # 10 seats x "3000" + 1 x "10000" cents = 400.00 a month
    assert call["properties"]["amount"] == 400
    assert call["properties"]["interval"] == "month"
    assert call["properties"]["plan"] == "Monthly (per seat)"
