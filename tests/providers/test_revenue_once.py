"""Revenue providers count each payment once (`once:`), whatever order its events come in.

The events of one payment go through the worker's real mapping path (``jobs.map_claim``,
the shipped ``mappings/<provider>.yaml``, the real Redis) in every order, in chunks of one
and all together, with repeats: a repeat under the same event id (a worker that died
before committing) emits the same call again with the same messageId; another event of
the same payment emits nothing. Every expected number is worked out by hand below.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from bridge import codec
from bridge.delivery import jobs
from bridge.delivery.inbox import Claim
from bridge.delivery.runtime import Runtime
from bridge.envelope import Envelope
from tests.conftest import ROOT
from tests.delivery import support
from tests.revenue_secrets import REVENUE_ENV


@pytest.fixture
def runtime(redis_url: str) -> Iterator[Runtime]:
    settings = support.settings(
        redis_url,
        "http://127.0.0.1:9/v1/batch",  # never called: these tests only map
        BRIDGE_MAPPINGS_DIR=str(ROOT / "mappings"),
        **REVENUE_ENV,
    )
    made = Runtime(settings)
    yield made
    made.close()


def envelope(source: str, event_id: str, event_type: str, body: dict[str, Any]) -> bytes:
    """A stored event as intake writes it (the id as the provider's scheme gives it)."""
    return Envelope.encode(
        source=source,
        id=event_id,
        type=event_type,
        time=1700000000.0,
        received_at=1700000001.0,
        raw=json.dumps(body).encode(),
    )


def deliver(runtime: Runtime, chunks: list[list[bytes]]) -> list[dict[str, Any]]:
    """Map each chunk as a drain job does; the calls that would be committed."""
    calls: list[dict[str, Any]] = []
    for n, events in enumerate(chunks):
        items, dead = jobs.map_claim(runtime, Claim(f"c{n}", events), Counter())
        assert dead == []
        calls.extend(codec.loads(item.split(b" ", 1)[1]) for item in items)
    return calls


def named(calls: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [c for c in calls if c.get("event") == event]


def orders_of(events: dict[str, bytes]) -> list[tuple[str, ...]]:
    return list(itertools.permutations(events))


def check_every_order(
    runtime: Runtime, events: dict[str, bytes], order: tuple[str, ...], message_id: str
) -> dict[str, Any]:
    """One chunk per event in ``order``, then all of them again in one chunk, reversed:
    exactly one Order Completed the first time, and only that call (same messageId,
    same properties) again. Returns the first Order Completed."""
    first = deliver(runtime, [[events[name]] for name in order])
    [counted] = named(first, "Order Completed")
    assert counted["messageId"] == message_id
    again = named(deliver(runtime, [[events[name] for name in reversed(order)]]), "Order Completed")
    assert [c["messageId"] for c in again] == [message_id]
    assert again[0]["properties"] == counted["properties"]
    return counted


# ---- Shopify: orders/create of an order created paid, and its orders/paid ------------

SHOPIFY_ORDER = {
    "id": 5001,
    "name": "#1001",
    "currency": "USD",
    "financial_status": "paid",
    "total_price": "25.50",
    "subtotal_price": "20.00",
    "total_tax": "1.50",
    "total_discounts": "0.00",
    "total_shipping_price_set": {"shop_money": {"amount": "4.00", "currency_code": "USD"}},
    "note_attributes": [{"name": "user_id", "value": "user_shop"}],
    "customer": {"id": 7001, "email": "ada@example.com"},
}
SHOPIFY_REFUND = {
    "id": 6001,
    "order_id": 5001,
    "transactions": [{"kind": "refund", "status": "success", "amount": "5.25", "currency": "USD"}],
}
SHOPIFY = {
    "create": envelope("shopify", "ev-create", "orders/create", SHOPIFY_ORDER),
    "paid": envelope("shopify", "ev-paid", "orders/paid", SHOPIFY_ORDER),
    # Shopify may deliver a topic again under another event id.
    "paid-again": envelope("shopify", "ev-paid-2", "orders/paid", SHOPIFY_ORDER),
}


@pytest.mark.parametrize("order", orders_of(SHOPIFY), ids="-".join)
def test_shopify_order_created_paid_and_orders_paid_count_once(
    runtime: Runtime, order: tuple[str, ...]
) -> None:
    counted = check_every_order(runtime, SHOPIFY, order, "shopify:5001:0")
    p = counted["properties"]
    # "25.50" total; revenue = subtotal "20.00" (tax 1.50 and shipping 4.00 apart).
    assert (p["order_id"], p["total"], p["revenue"], p["tax"], p["shipping"]) == (
        "5001",
        Decimal("25.50"),
        Decimal("20.00"),
        Decimal("1.50"),
        Decimal("4.00"),
    )
    assert counted["userId"] == "user_shop"


def test_shopify_refund_counts_once_with_its_orders_id(runtime: Runtime) -> None:
    refund = envelope("shopify", "ev-refund", "refunds/create", SHOPIFY_REFUND)
    refund_again = envelope("shopify", "ev-refund-2", "refunds/create", SHOPIFY_REFUND)
    calls = deliver(runtime, [[SHOPIFY["paid"]], [refund], [refund_again], [refund]])
    refunds = named(calls, "Order Refunded")
    # ev-refund twice (the same event: the same call), ev-refund-2 nothing.
    assert [c["messageId"] for c in refunds] == ["shopify:refund:6001:0"] * 2
    assert refunds[0]["properties"]["order_id"] == "5001"
    assert refunds[0]["properties"]["total"] == Decimal("5.25")


def test_shopify_order_created_unpaid_waits_for_orders_paid(runtime: Runtime) -> None:
    pending = envelope(
        "shopify", "ev-create", "orders/create", {**SHOPIFY_ORDER, "financial_status": "pending"}
    )
    assert named(deliver(runtime, [[pending]]), "Order Completed") == []
    [counted] = named(deliver(runtime, [[SHOPIFY["paid"]]]), "Order Completed")
    assert counted["messageId"] == "shopify:5001:0"


# ---- Paddle: transaction.paid, then transaction.completed ---------------------------


def paddle_transaction(status: str) -> dict[str, Any]:
    return {
        "id": "txn_once",
        "status": status,
        "customer_id": "ctm_once",
        "currency_code": "EUR",
        "custom_data": {"user_id": "user_paddle"},
        "invoice_number": "325-1" if status == "completed" else None,
        "details": {
            "totals": {
                "subtotal": "10000",
                "discount": "1000",
                "tax": "1710",
                "total": "10710",
                "grand_total": "10710",
                "currency_code": "EUR",
            }
        },
        "items": [],
    }


def paddle_event(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    body = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": "2024-09-09T16:01:32.124Z",
        "data": data,
    }
    return envelope("paddle", event_id, event_type, body)


PADDLE = {
    "paid": paddle_event("evt_paid", "transaction.paid", paddle_transaction("paid")),
    "completed": paddle_event(
        "evt_completed", "transaction.completed", paddle_transaction("completed")
    ),
}


@pytest.mark.parametrize("order", orders_of(PADDLE), ids="-".join)
def test_paddle_paid_and_completed_count_once(runtime: Runtime, order: tuple[str, ...]) -> None:
    counted = check_every_order(runtime, PADDLE, order, "paddle:txn_once:0")
    p = counted["properties"]
    # grand_total 10710 cents = 107.10; revenue (10000 - 1000) = 90.00; tax 17.10.
    assert (p["order_id"], p["total"], p["revenue"], p["tax"], p["currency"]) == (
        "txn_once",
        Decimal("107.10"),
        Decimal("90.00"),
        Decimal("17.10"),
        "EUR",
    )
    assert counted["userId"] == "user_paddle"


def test_paddle_refund_adjustment_created_and_updated_count_once(runtime: Runtime) -> None:
    adjustment = {
        "id": "adj_once",
        "action": "refund",
        "status": "approved",
        "transaction_id": "txn_once",
        "customer_id": "ctm_once",
        "currency_code": "EUR",
        "totals": {"total": "2500", "currency_code": "EUR"},
    }
    created = paddle_event("evt_adj_created", "adjustment.created", adjustment)
    updated = paddle_event("evt_adj_updated", "adjustment.updated", adjustment)
    calls = deliver(runtime, [[PADDLE["completed"]], [created], [updated], [updated, created]])
    refunds = named(calls, "Order Refunded")
    # created counts it and re-emits when mapped again; updated never emits.
    assert [c["messageId"] for c in refunds] == ["paddle:adj_once:0"] * 2
    assert refunds[0]["properties"]["order_id"] == "txn_once"  # its order's order_id
    assert refunds[0]["properties"]["total"] == Decimal("25.00")
    # No custom_data on the adjustment: the customer learned from the transaction.
    assert refunds[0]["userId"] == "user_paddle"


# ---- WooCommerce: order.created processing, then order.updated completed ------------

WOO_ORDER = {
    "id": 727,
    "number": "727",
    "status": "processing",
    "currency": "USD",
    "total": "29.35",
    "total_tax": "1.35",
    "shipping_total": "10.00",
    "discount_total": "0.00",
    "customer_id": 0,
    "billing": {"email": "john@example.com"},
    "meta_data": [{"id": 1, "key": "user_id", "value": "user_woo"}],
    "line_items": [],
    "date_modified_gmt": "2026-11-01T10:00:00",
}


def woo(event_type: str, status: str) -> bytes:
    # bridge's documented WooCommerce id: order:<id>:paid for processing and completed,
    # order:<id>:<status> for cancelled/refunded/failed, else with date_modified_gmt.
    if status in ("processing", "completed"):
        event_id = "order:727:paid"
    elif status in ("cancelled", "refunded", "failed"):
        event_id = f"order:727:{status}"
    else:
        event_id = f"order:727:{status}:2026-11-01T09:00:00"
    return envelope("woocommerce", event_id, event_type, {**WOO_ORDER, "status": status})


WOO = {
    "pending": woo("order.created", "pending"),
    "processing": woo("order.updated", "processing"),
    "completed": woo("order.updated", "completed"),
}


@pytest.mark.parametrize("order", orders_of(WOO), ids="-".join)
def test_woocommerce_order_counts_once_and_its_full_refund_joins_it(
    runtime: Runtime, order: tuple[str, ...]
) -> None:
    calls = deliver(runtime, [[WOO[name]] for name in order])
    counted = named(calls, "Order Completed")
    # processing and completed share bridge's event id (order:727:paid): one event of
    # the order, so whichever is mapped emits the same call under one messageId.
    assert {c["messageId"] for c in counted} == {"woocommerce:727:0"}
    assert len(counted) == 2
    p = counted[0]["properties"]
    # 29.35 total; revenue 29.35 - 1.35 tax - 10.00 shipping = 18.00.
    assert (p["order_id"], p["total"], p["revenue"]) == ("727", Decimal("29.35"), Decimal("18"))
    refunded = woo("order.updated", "refunded")
    refunds = named(deliver(runtime, [[refunded], [refunded]]), "Order Refunded")
    assert [c["messageId"] for c in refunds] == ["woocommerce:refund:727:0"] * 2
    assert refunds[0]["properties"]["order_id"] == "727"
    assert refunds[0]["properties"]["total"] == Decimal("29.35")


def test_woocommerce_order_paid_again_under_another_event_id_emits_nothing(
    runtime: Runtime,
) -> None:
    # Past intake's dedup window a stored event of the paid order may carry an id of
    # another scheme (here: an event recorded before bridge derived ids by state).
    completed = {**WOO_ORDER, "status": "completed"}
    other = envelope("woocommerce", "delivery-99", "order.updated", completed)
    calls = deliver(runtime, [[WOO["processing"]], [other]])
    assert [c["messageId"] for c in named(calls, "Order Completed")] == ["woocommerce:727:0"]


# ---- Lemon Squeezy: a subscription's first payment is an order and an invoice --------


def ls_event(name: str, kind: str, object_id: str, attributes: dict[str, Any]) -> bytes:
    body = {
        "meta": {"event_name": name, "custom_data": {"user_id": "user_ls"}},
        "data": {"type": kind, "id": object_id, "attributes": attributes},
    }
    # bridge's documented Lemon Squeezy id: event_name:data.type:data.id:updated_at
    event_id = f"{name}:{kind}:{object_id}:{attributes['updated_at']}"
    return envelope("lemonsqueezy", event_id, name, body)


LS_ORDER = {
    "customer_id": 9,
    "status": "paid",
    "currency": "USD",
    "subtotal": 5000,
    "discount_total": 500,
    "tax": 450,
    "total": 4950,
    "order_number": 42,
    "first_order_item": {"product_id": 1, "product_name": "Pro", "price": 5000},
    "updated_at": "2026-11-01T10:00:00.000000Z",
}
LEMONSQUEEZY = {
    "order": ls_event("order_created", "orders", "501", LS_ORDER),
    # The same order re-sent after an update: a new derived event id, the same order.
    "order-updated": ls_event(
        "order_created", "orders", "501", {**LS_ORDER, "updated_at": "2026-11-02T08:00:00.000000Z"}
    ),
    "first-invoice": ls_event(
        "subscription_payment_success",
        "subscription-invoices",
        "701",
        {
            "subscription_id": 3,
            "customer_id": 9,
            "billing_reason": "initial",
            "status": "paid",
            "currency": "USD",
            "subtotal": 5000,
            "discount_total": 500,
            "tax": 450,
            "total": 4950,
            "updated_at": "2026-11-01T10:00:01.000000Z",
        },
    ),
}


@pytest.mark.parametrize("order", orders_of(LEMONSQUEEZY), ids="-".join)
def test_lemonsqueezy_order_and_its_first_invoice_count_once(
    runtime: Runtime, order: tuple[str, ...]
) -> None:
    counted = check_every_order(runtime, LEMONSQUEEZY, order, "lemonsqueezy:501:0")
    p = counted["properties"]
    # total 4950 cents = 49.50; revenue (5000 - 500) = 45.00; tax 4.50.
    assert (p["order_id"], p["total"], p["revenue"], p["tax"]) == (
        "501",
        Decimal("49.50"),
        Decimal("45.00"),
        Decimal("4.50"),
    )


def test_lemonsqueezy_renewal_invoice_counts_once(runtime: Runtime) -> None:
    renewal = {
        "subscription_id": 3,
        "customer_id": 9,
        "billing_reason": "renewal",
        "status": "paid",
        "currency": "USD",
        "subtotal": 5000,
        "discount_total": 0,
        "tax": 0,
        "total": 5000,
        "updated_at": "2026-12-01T10:00:00.000000Z",
    }
    first = ls_event("subscription_payment_success", "subscription-invoices", "702", renewal)
    later = ls_event(
        "subscription_payment_success",
        "subscription-invoices",
        "702",
        {**renewal, "updated_at": "2026-12-01T10:05:00.000000Z"},
    )
    calls = named(deliver(runtime, [[first], [later], [first, later]]), "Order Completed")
    # first counts it (and re-emits its call when mapped again); later never emits.
    assert [c["messageId"] for c in calls] == ["lemonsqueezy:subscription-invoice:702:0"] * 2
    assert calls[0]["properties"]["total"] == Decimal("50.00")
