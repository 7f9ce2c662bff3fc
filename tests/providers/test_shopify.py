"""Shopify: the attack table and the real (test-delivery) payloads through intake and
the shipped mapping. The captured HMACs cannot be checked (re-serialised bodies,
unknown secret), so the bodies are signed here as Shopify documents."""

from __future__ import annotations

import uuid

import orjson
import pytest
from redis import Redis

from bridge.errors import MalformedPayload
from bridge.providers.shopify import ShopifyProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import SHOPIFY_SECRET

NEXT = "shpss_rotated_shopify_fedcba9876543210"


def make_body() -> bytes:
    return orjson.dumps(
        {
            "id": uuid.uuid4().int % 10**15,
            "name": "#1001",
            "currency": "USD",
            "total_price": "10.00",
            "subtotal_price": "10.00",
            "total_tax": "0.00",
            "total_discounts": "0.00",
            "note_attributes": [{"name": "user_id", "value": "user_42"}],
        }
    )


_IDS: dict[bytes, str] = {}


def sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
    # A redelivery keeps its event id, as Shopify's retries do.
    return signing.shopify(body, secret, "orders/paid", _IDS.setdefault(body, str(uuid.uuid4())))


def fresh_id(headers: dict[str, str]) -> dict[str, str]:
    new = str(uuid.uuid4())
    return {**headers, "X-Shopify-Event-Id": new, "X-Shopify-Webhook-Id": new}


class TestShopifyAttacks(AttackTable):
    case = Case(
        source="shopify",
        env_var="SHOPIFY_WEBHOOK_SECRET",
        secret=SHOPIFY_SECRET,
        next_secret=NEXT,
        make_body=make_body,
        sign=sign,
        signature_header="X-Shopify-Hmac-Sha256",
        fresh_unsigned_id=fresh_id,
    )


def test_topic_comes_from_the_header_and_is_required() -> None:
    body = make_body()
    headers = signing.shopify(body, SHOPIFY_SECRET, "orders/cancelled", "e-1")
    event = ShopifyProvider().verify(body, headers, [SHOPIFY_SECRET], tolerance=300, now=0)
    assert (event.id, event.type) == ("e-1", "orders/cancelled")
    assert event.time == 1723071501.978733  # X-Shopify-Triggered-At, nanoseconds cut
    del headers["X-Shopify-Topic"]
    with pytest.raises(MalformedPayload):
        ShopifyProvider().verify(body, headers, [SHOPIFY_SECRET], tolerance=300, now=0)


def test_old_deliveries_without_event_id_use_the_webhook_id() -> None:
    body = make_body()
    headers = signing.shopify(body, SHOPIFY_SECRET, "orders/paid", "w-1")
    del headers["X-Shopify-Event-Id"]
    event = ShopifyProvider().verify(body, headers, [SHOPIFY_SECRET], tolerance=300, now=0)
    assert event.id == "w-1"


def test_signer_matches_the_documented_scheme() -> None:
    body = make_body()
    ours = ShopifyProvider().sign(body, SHOPIFY_SECRET, now=0, event_type="orders/paid")
    theirs = signing.shopify(body, SHOPIFY_SECRET, "orders/paid", "x")
    assert ours["X-Shopify-Hmac-Sha256"] == theirs["X-Shopify-Hmac-Sha256"]


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")

#: file -> (X-Shopify-Topic, X-Shopify-Webhook-Id) as captured (SOURCES.md).
CAPTURED = {
    "shopify__orders.create.json": ("orders/create", "8a95126f-859a-4db9-b8f1-350e299e9ea0"),
    "shopify__orders.paid.json": ("orders/paid", "94c7938d-b037-48f8-8216-35044f5f7d28"),
    "shopify__orders.cancelled.json": ("orders/cancelled", "489eb7a0-7c94-4ea2-b7be-db3531ef5cb7"),
    "shopify__refunds.create.json": ("refunds/create", "883d4f6c-1972-46f8-ac0e-1a889021f949"),
    "shopify__customers.create.json": ("customers/create", "b528b59e-04ea-4957-8778-19141f4b3c79"),
    "shopify__app_subscriptions.update.json": (
        "app_subscriptions/update",
        "4b256564-3d53-46cd-87a0-c2df26dfe03d",
    ),
}


def _deliver(name: str, redis_url: str, redis: Redis) -> list[dict[str, object]]:
    body = (PAYLOADS / name).read_bytes()
    topic, webhook_id = CAPTURED[name]
    headers = signing.shopify(body, SHOPIFY_SECRET, topic, webhook_id)
    stored, calls = deliver(app_for(redis_url), body, headers, "shopify", redis)
    assert (stored.id, stored.type) == (webhook_id, topic)
    # An order's revenue is counted once by the order id, a refund by its own id.
    prefix = {"orders/paid": "", "refunds/create": "refund:"}.get(topic)
    named = webhook_id if prefix is None else f"{prefix}{orjson.loads(body)['id']}"
    for call in calls:
        assert call["messageId"].startswith(f"shopify:{named}:")
        assert call["timestamp"] == "2024-08-07T22:58:21.978Z"  # X-Shopify-Triggered-At
    return calls


@present
@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_every_real_payload_is_accepted_when_signed(
    name: str, redis_url: str, redis: Redis
) -> None:
    _deliver(name, redis_url, redis)


@present
def test_real_paid_order_numbers(redis_url: str, redis: Redis) -> None:
    order, identify = _deliver("shopify__orders.paid.json", redis_url, redis)
    assert order["event"] == "Order Completed"
    # No note attribute user_id: the customer id (as JavaScript rounded it) is the fallback.
    assert order["anonymousId"] == "shopify:115310627314723950"
    p = order["properties"]
    assert isinstance(p, dict)
    assert p["order_id"] == "820982911946154500"
    # total_price "388.00", subtotal_price "388.00", total_tax "0.00",
    # total_discounts "20.00", shipping "10.00" (USD)
    assert (p["total"], p["subtotal"], p["revenue"], p["tax"], p["discount"], p["shipping"]) == (
        388,
        388,
        388,
        0,
        20,
        10,
    )
    assert p["currency"] == "USD"
    assert [(x["sku"], x["quantity"], x["price"]) for x in p["products"]] == [
        ("IPOD2008PINK", 1, 199),
        ("IPOD2008PINK", 1, 199),
    ]
    assert identify["type"] == "identify"
    assert identify["traits"] == {
        "email": "john@example.com",
        "firstName": "John",
        "lastName": "Smith",
        "shopify_customer_id": "115310627314723950",
    }


@present
def test_real_order_create_only_teaches_and_cancel_is_order_cancelled(
    redis_url: str, redis: Redis
) -> None:
    assert _deliver("shopify__orders.create.json", redis_url, redis) == []
    [cancel] = _deliver("shopify__orders.cancelled.json", redis_url, redis)
    assert cancel["event"] == "Order Cancelled"
    assert cancel["properties"] == {
        "order_id": "820982911946154500",
        "order_number": "#9999",
        "total": 388,
        "currency": "USD",
        "reason": "customer",
    }


@present
def test_real_refund_amount_is_its_line_items(redis_url: str, redis: Redis) -> None:
    [refund] = _deliver("shopify__refunds.create.json", redis_url, redis)
    assert refund["event"] == "Order Refunded"
    p = refund["properties"]
    assert isinstance(p, dict)
    assert p["order_id"] == "820982911946154500"  # the same order_id as its order
    # No transactions in the sample: 2 line items x "199.00" + tax "0.00" = 398.00
    assert p["total"] == 398
    assert p["currency"] == "USD"
    assert refund["anonymousId"] == "shopify:order:820982911946154500"


@present
def test_real_customer_and_pending_app_subscription(redis_url: str, redis: Redis) -> None:
    [identify] = _deliver("shopify__customers.create.json", redis_url, redis)
    assert identify["anonymousId"] == "shopify:706405506930370000"
    assert identify["traits"]["email"] == "bob@biller.com"  # type: ignore[index]
    assert _deliver("shopify__app_subscriptions.update.json", redis_url, redis) == []
