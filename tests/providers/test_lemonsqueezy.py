"""Lemon Squeezy: the attack table, the derived event id, and the real payloads through
intake and the shipped mapping."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson
import pytest
from redis import Redis

from bridge.errors import MalformedPayload
from bridge.providers.lemonsqueezy import LemonSqueezyProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS, payload_files
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import LEMONSQUEEZY_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "meta": {"event_name": "order_created", "custom_data": {"user_id": "user_42"}},
            "data": {
                "type": "orders",
                "id": str(uuid.uuid4().int % 10**9),
                "attributes": {
                    "customer_id": 1,
                    "currency": "USD",
                    "subtotal": 999,
                    "discount_total": 0,
                    "tax": 0,
                    "total": 999,
                    "status": "paid",
                    "updated_at": "2026-11-01T10:00:00.000000Z",
                },
            },
        }
    )


class TestLemonSqueezyAttacks(AttackTable):
    case = Case(
        source="lemonsqueezy",
        env_var="LEMONSQUEEZY_WEBHOOK_SECRET",
        secret=LEMONSQUEEZY_SECRET,
        next_secret="ls-rotated-secret",
        make_body=make_body,
        sign=lambda body, secret, ts: signing.lemonsqueezy(body, secret, "order_created"),
        signature_header="X-Signature",
    )


def test_event_id_is_derived_from_the_signed_body_and_stable() -> None:
    body = make_body()
    parsed = orjson.loads(body)
    provider = LemonSqueezyProvider()
    headers = signing.lemonsqueezy(body, LEMONSQUEEZY_SECRET, "order_created")
    first = provider.verify(body, headers, [LEMONSQUEEZY_SECRET], tolerance=0, now=0)
    again = provider.verify(body, headers, [LEMONSQUEEZY_SECRET], tolerance=0, now=0)
    expected = f"order_created:orders:{parsed['data']['id']}:2026-11-01T10:00:00.000000Z"
    assert first.id == again.id == expected
    assert first.time == 1793527200.0


def test_event_name_header_must_agree_with_the_signed_body() -> None:
    body = make_body()
    headers = signing.lemonsqueezy(body, LEMONSQUEEZY_SECRET, "order_refunded")
    with pytest.raises(MalformedPayload):
        LemonSqueezyProvider().verify(body, headers, [LEMONSQUEEZY_SECRET], tolerance=0, now=0)


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")
REAL = payload_files("lemonsqueezy")


def _deliver(body: bytes, redis_url: str, redis: Redis) -> list[dict[str, object]]:
    name = orjson.loads(body)["meta"]["event_name"]
    headers = signing.lemonsqueezy(body, LEMONSQUEEZY_SECRET, name)
    _, calls = deliver(app_for(redis_url), body, headers, "lemonsqueezy", redis)
    return calls


@present
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_payload_is_accepted_when_signed(path, redis_url: str, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    for call in _deliver(path.read_bytes(), redis_url, redis):
        assert call["anonymousId"] == "lemonsqueezy:" + str(
            orjson.loads(path.read_bytes())["data"]["attributes"]["customer_id"]
        )


@present
def test_real_order_created_numbers(redis_url: str, redis: Redis) -> None:
    body = (PAYLOADS / "lemonsqueezy__order_created.json").read_bytes()
    order, identify = _deliver(body, redis_url, redis)
    assert order["event"] == "Order Completed"
    # Counted once by the order (data.id "1"), not by the derived event id.
    assert order["messageId"] == "lemonsqueezy:1:0"
    assert order["timestamp"] == "2023-01-17T12:26:23.000Z"
    p = order["properties"]
    assert isinstance(p, dict)
    # subtotal 5899, discount_total 0, tax 0, total 5899 cents (USD)
    assert (p["order_id"], p["total"], p["subtotal"], p["revenue"], p["tax"]) == (
        "1",
        Decimal("58.99"),
        Decimal("58.99"),
        Decimal("58.99"),
        0,
    )
    # first_order_item.price 999 cents, no quantity in the body: 1
    assert p["products"] == [
        {
            "product_id": "1",
            "variant": "Default",
            "name": "Product One",
            "price": Decimal("9.99"),
            "quantity": 1,
        }
    ]
    assert identify["traits"] == {"email": "dan@lemonsqueezy.com", "name": "Dan R"}


@present
def test_real_initial_invoice_is_not_counted_twice(redis_url: str, redis: Redis) -> None:
    body = (PAYLOADS / "lemonsqueezy__subscription_payment_success.json").read_bytes()
    assert orjson.loads(body)["data"]["attributes"]["billing_reason"] == "initial"
    assert _deliver(body, redis_url, redis) == []  # its order_created counted it
    renewal = orjson.loads(body)
    renewal["data"]["attributes"]["billing_reason"] = "renewal"
    renewal["data"]["attributes"]["updated_at"] = "2023-02-18T12:16:24.000000Z"
    [call] = _deliver(orjson.dumps(renewal), redis_url, redis)
    assert call["event"] == "Order Completed"
    assert call["properties"]["total"] == Decimal("9.99")  # type: ignore[index]  # 999 cents


@present
def test_real_subscription_created_on_trial(redis_url: str, redis: Redis) -> None:
    body = (PAYLOADS / "lemonsqueezy__subscription_created.json").read_bytes()
    [call] = _deliver(body, redis_url, redis)
    assert call["event"] == "Trial Started"
    assert call["properties"]["quantity"] == 5  # type: ignore[index]
    assert call["properties"]["trial_end"] == "2023-01-24T12:43:48.000000Z"  # type: ignore[index]
