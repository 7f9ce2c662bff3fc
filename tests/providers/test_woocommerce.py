"""WooCommerce: the attack table, the unsigned creation ping, the state-derived event id
and the documented order bodies through intake and the shipped mapping."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson
import pytest
from redis import Redis

from tests import revenue_signing as signing
from tests.conftest import PAYLOADS
from tests.providers.attacks import AttackTable, Case, app_for, deliver, inbox
from tests.revenue_secrets import WOOCOMMERCE_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "id": uuid.uuid4().int % 10**8,
            "number": "1",
            "status": "processing",
            "currency": "USD",
            "date_modified_gmt": "2026-11-01T10:00:00",
            "total": "10.00",
            "total_tax": "0.00",
            "shipping_total": "0.00",
            "discount_total": "0.00",
            "customer_id": 0,
            "meta_data": [{"id": 1, "key": "user_id", "value": "user_42"}],
        }
    )


class TestWooCommerceAttacks(AttackTable):
    case = Case(
        source="woocommerce",
        env_var="WOOCOMMERCE_WEBHOOK_SECRET",
        secret=WOOCOMMERCE_SECRET,
        next_secret="wc-rotated-secret",
        make_body=make_body,
        sign=lambda body, secret, ts: signing.woocommerce(body, secret, "order.created"),
        signature_header="X-WC-Webhook-Signature",
    )


def test_the_creation_ping_gets_200_and_stores_nothing(redis_url: str, redis: Redis) -> None:
    client = app_for(redis_url).test_client()
    resp = client.post(
        "/webhooks/woocommerce",
        data=b"webhook_id=9",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200
    assert resp.get_json()["reason"] == "ping"
    assert inbox(redis) == []
    # Anything else unsigned is refused: the ping is one exact shape.
    for body in (b"webhook_id=9&x=1", b'{"webhook_id": 9}', b"webhook_id=9\n"):
        resp = client.post("/webhooks/woocommerce", data=body)
        assert resp.status_code == 400, body
    assert inbox(redis) == []


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")


def _deliver(name: str, topic: str, redis_url: str, redis: Redis) -> tuple[str, list[dict]]:  # type: ignore[type-arg]
    body = (PAYLOADS / name).read_bytes()
    headers = signing.woocommerce(body, WOOCOMMERCE_SECRET, topic)
    stored, calls = deliver(app_for(redis_url), body, headers, "woocommerce", redis)
    return stored.id, calls


@present
def test_real_created_order_numbers(redis_url: str, redis: Redis) -> None:
    event_id, [order, identify] = _deliver(
        "woocommerce__order.created.json", "order.created", redis_url, redis
    )
    assert event_id == "order:727:paid"  # status processing
    assert order["event"] == "Order Completed"
    assert order["timestamp"] == "2017-03-22T19:28:08.000Z"  # date_modified_gmt
    assert order["anonymousId"] == "woocommerce:order:727"  # guest, no user_id meta
    p = order["properties"]
    # total "29.35" = items 6.00 + 12.00, shipping "10.00", tax "1.35"
    assert (p["total"], p["revenue"], p["subtotal"], p["tax"], p["shipping"]) == (
        Decimal("29.35"),
        18,
        18,
        Decimal("1.35"),
        10,
    )
    assert (p["order_id"], p["currency"], p["payment_method"]) == ("727", "USD", "bacs")
    assert [(x["product_id"], x["quantity"], x["price"]) for x in p["products"]] == [
        ("93", 2, 3),
        ("22", 1, 12),
    ]
    assert identify["traits"]["email"] == "john.doe@example.com"


@present
def test_real_completed_update_after_the_paid_create_is_a_duplicate(
    redis_url: str, redis: Redis
) -> None:
    created = (PAYLOADS / "woocommerce__order.created.json").read_bytes()
    completed = (PAYLOADS / "woocommerce__order.updated.completed.json").read_bytes()
    assert orjson.loads(completed)["id"] == 727
    client = app_for(redis_url).test_client()
    first = client.post(
        "/webhooks/woocommerce",
        data=created,
        headers=signing.woocommerce(created, WOOCOMMERCE_SECRET, "order.created"),
    )
    again = client.post(
        "/webhooks/woocommerce",
        data=completed,
        headers=signing.woocommerce(completed, WOOCOMMERCE_SECRET, "order.updated"),
    )
    assert first.get_json() == {"status": "accepted", "id": "order:727:paid"}
    assert again.get_json() == {"status": "duplicate", "id": "order:727:paid"}
    assert len(inbox(redis)) == 1  # one Order Completed for order 727


@present
def test_real_completed_order_alone_counts_once(redis_url: str, redis: Redis) -> None:
    event_id, calls = _deliver(
        "woocommerce__order.updated.completed.json", "order.updated", redis_url, redis
    )
    assert event_id == "order:727:paid"
    assert [c.get("event", c["type"]) for c in calls] == ["Order Completed", "identify"]
    # total "29.35", total_tax "1.35", shipping_total "10.00": revenue 18.00
    properties = calls[0]["properties"]
    assert (properties["total"], properties["revenue"]) == (Decimal("29.35"), 18)
