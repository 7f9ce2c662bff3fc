"""Razorpay: the attack table and the real documented payloads through intake and the
shipped mapping."""

from __future__ import annotations

import uuid

import orjson
import pytest
from redis import Redis

from bridge.errors import MalformedPayload
from bridge.providers.razorpay import RazorpayProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS, payload_files
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import RAZORPAY_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "entity": "event",
            "event": "payment.captured",
            "contains": ["payment"],
            "created_at": 1793527200,
            "payload": {
                "payment": {
                    "entity": {
                        "id": f"pay_{uuid.uuid4().hex[:14]}",
                        "amount": 50000,
                        "currency": "INR",
                        "status": "captured",
                        "notes": {"user_id": "user_42"},
                    }
                }
            },
        }
    )


_IDS: dict[bytes, str] = {}


def sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
    return signing.razorpay(body, secret, _IDS.setdefault(body, f"evt_{uuid.uuid4().hex[:14]}"))


class TestRazorpayAttacks(AttackTable):
    case = Case(
        source="razorpay",
        env_var="RAZORPAY_WEBHOOK_SECRET",
        secret=RAZORPAY_SECRET,
        next_secret="rzp-rotated-secret",
        make_body=make_body,
        sign=sign,
        signature_header="X-Razorpay-Signature",
        fresh_unsigned_id=lambda h: {**h, "X-Razorpay-Event-Id": uuid.uuid4().hex[:14]},
    )


def test_the_event_id_header_is_required() -> None:
    body = make_body()
    headers = signing.razorpay(body, RAZORPAY_SECRET, "evt_1")
    del headers["X-Razorpay-Event-Id"]
    with pytest.raises(MalformedPayload):
        RazorpayProvider().verify(body, headers, [RAZORPAY_SECRET], tolerance=0, now=0)


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")
REAL = payload_files("razorpay")


def _deliver(name: str, redis_url: str, redis: Redis) -> list[dict[str, object]]:
    body = (PAYLOADS / name).read_bytes()
    event_id = "evt_" + name.split("__")[1].replace(".json", "").replace(".", "_")
    _, calls = deliver(
        app_for(redis_url),
        body,
        signing.razorpay(body, RAZORPAY_SECRET, event_id),
        "razorpay",
        redis,
    )
    entities = orjson.loads(body)["payload"]
    # Payments and refunds are counted once by their own ids; the rest by the event id.
    named = {
        "payment.captured": entities.get("payment", {}).get("entity", {}).get("id"),
        "refund.processed": entities.get("refund", {}).get("entity", {}).get("id"),
    }.get(orjson.loads(body)["event"]) or event_id
    for call in calls:
        assert call["messageId"].startswith(f"razorpay:{named}:")
        assert call.get("userId") or call.get("anonymousId")
    return calls


@present
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_payload_is_accepted_when_signed(path, redis_url: str, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    _deliver(path.name, redis_url, redis)


@present
def test_real_payment_captured_numbers(redis_url: str, redis: Redis) -> None:
    [order] = _deliver("razorpay__payment.captured.json", redis_url, redis)
    assert order["event"] == "Order Completed"
    assert order["timestamp"] == "2023-08-11T06:35:48.000Z"  # created_at 1691735748
    assert order["anonymousId"] == "razorpay:pay_DESp9bgForNoUd"  # notes are []
    # amount 100 paise = INR 1.00
    assert order["properties"] == {
        "order_id": "order_DESoU0U4ikYA19",
        "payment_id": "pay_DESp9bgForNoUd",
        "total": 1,
        "revenue": 1,
        "currency": "INR",
        "payment_method": "card",
    }


@present
def test_real_refund_is_this_refund_with_the_payment_order(redis_url: str, redis: Redis) -> None:
    [refund] = _deliver("razorpay__refund.processed.json", redis_url, redis)
    assert refund["event"] == "Order Refunded"
    # refund amount 50000 paise = INR 500.00 (the payment's amount_refunded is 1900.00)
    assert refund["properties"] == {
        "order_id": "order_FPoIeimWki9j8A",
        "payment_id": "pay_FPoJKWQQ8lK13n",
        "refund_id": "rfnd_FS8TWyPrCsa0OB",
        "total": 500,
        "currency": "INR",
    }


@present
def test_real_order_paid_and_subscription_charged_add_no_revenue(
    redis_url: str, redis: Redis
) -> None:
    assert _deliver("razorpay__order.paid.json", redis_url, redis) == []
    [renewed] = _deliver("razorpay__subscription.charged.json", redis_url, redis)
    assert renewed["event"] == "Subscription Renewed"
    assert renewed["properties"]["amount"] == 1000  # type: ignore[index]  # 100000 paise
    assert "revenue" not in renewed["properties"]  # type: ignore[operator]
    [started] = _deliver("razorpay__subscription.activated.json", redis_url, redis)
    assert started["event"] == "Subscription Started"
    [cancelled] = _deliver("razorpay__subscription.cancelled.json", redis_url, redis)
    assert cancelled["event"] == "Subscription Cancelled"
