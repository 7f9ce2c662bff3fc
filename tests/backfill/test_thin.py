"""Thin events (event destinations) and Checkout enrichment: verified at intake, their
object fetched by the worker from a local Stripe API, mapped by the same rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis import Redis

from bridge import hydrate
from bridge.delivery.runtime import Runtime
from bridge.devtools.collector import Collector
from bridge.settings import Settings
from tests.backfill.conftest import corpus
from tests.backfill.test_backfill import drain_all, post_webhook
from tests.processes import wait_until
from tests.stripe_server import Failure, StripeServer

SESSION = "cs_test_a1IdO3cRAiDtsfYm6c8sKoFbyLpxibkNrDf56cVIkv5IylfNuzl155fePm"


def thin(
    type_: str, thin_id: str, related: dict[str, str], snapshot: str | None, created: str
) -> dict[str, Any]:
    """A thin event as https://docs.stripe.com/event-destinations#thin-events shows it."""
    event: dict[str, Any] = {
        "id": thin_id,
        "object": "v2.core.event",
        "type": type_,
        "livemode": False,
        "created": created,
        "related_object": related,
    }
    if snapshot:
        event["snapshot_event"] = snapshot
    return event


def iso(ts: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def strip(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "sentAt"} for c in calls]


def test_thin_event_ends_as_the_same_call_as_its_snapshot_twin(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    redis: Redis,
    collector: Collector,
    now: int,
) -> None:
    snapshot = corpus("inv_paid_basil_subscription_create", created=now - 120)
    stripe_api.add_event(snapshot)
    invoice_id = snapshot["data"]["object"]["id"]
    event = thin(
        "v1.invoice.paid",
        "evt_test_65thin0001",
        {"id": invoice_id, "type": "invoice", "url": f"/v1/invoices/{invoice_id}"},
        snapshot["id"],
        iso(now - 119),
    )
    settings = make_settings()
    answer = post_webhook(settings, event)
    # Deduplicated on the snapshot event id.
    assert answer == {"status": "accepted", "id": "evt_corpus_inv_basil_paid"}
    drain_all(runtime)
    by_thin = strip(collector.calls)
    assert [c["messageId"] for c in by_thin] == ["stripe:in_1SVC87HOQNg4XnOMdHAlqDva:0"]
    # The snapshot twin arriving too is a duplicate: one delivery.
    assert post_webhook(settings, snapshot)["status"] == "duplicate"

    # The snapshot alone, on a fresh Redis, maps to exactly the same call.
    collector.reset()
    redis.flushdb()
    assert post_webhook(settings, snapshot)["status"] == "accepted"
    drain_all(runtime)
    assert strip(collector.calls) == by_thin
    fetched = [r.path for r in stripe_api.requests]
    assert fetched == [f"/v1/events/{snapshot['id']}"]


def test_thin_event_without_snapshot_fetches_its_related_object(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    collector: Collector,
    now: int,
) -> None:
    customer = corpus("cus_created_with_user_id_derived")["data"]["object"]
    stripe_api.put_object(f"/v1/customers/{customer['id']}", customer)
    event = thin(
        "v1.customer.created",
        "evt_test_65thin0002",
        {"id": customer["id"], "type": "customer", "url": f"/v1/customers/{customer['id']}"},
        None,
        "2026-01-02T03:04:05.678Z",
    )
    assert post_webhook(make_settings(), event)["status"] == "accepted"
    drain_all(runtime)
    (call,) = collector.calls
    assert call["type"] == "identify"
    assert call["messageId"] == "stripe:evt_test_65thin0002:customer-identify:0"
    assert call["userId"] == "u_1001"  # the fetched customer's metadata.user_id
    assert call["timestamp"].startswith("2026-01-02T03:04:05.678")


def test_v2_thin_event_without_a_rule_is_ignored(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, now: int
) -> None:
    event = thin(
        "v2.core.account.updated",
        "evt_test_65thin0003",
        {"id": "acct_1", "type": "v2.core.account", "url": "/v2/core/accounts/acct_1"},
        None,
        iso(now),
    )
    assert post_webhook(make_settings(), event)["status"] == "ignored"


def test_rate_limited_fetch_waits_and_delivers(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    redis: Redis,
    collector: Collector,
    now: int,
) -> None:
    snapshot = corpus("inv_paid_basil_subscription_create", created=now - 120)
    stripe_api.add_event(snapshot)
    event = thin(
        "v1.invoice.paid",
        "evt_test_65thin0004",
        {"id": "in_1", "type": "invoice", "url": "/v1/invoices/in_1"},
        snapshot["id"],
        iso(now - 119),
    )
    # Both of the hydrator's attempts are rate limited.
    stripe_api.fail_next(
        Failure(429, {"Retry-After": "0"}, "invalid_request_error", "Too many requests"),
        Failure(429, {"Retry-After": "0"}, "invalid_request_error", "Too many requests"),
    )
    post_webhook(make_settings(), event)
    drain_all(runtime)
    assert collector.calls == []
    assert redis.zcard(hydrate.PENDING) == 1
    assert len(runtime.dead_letters) == 0  # waiting, not dead
    # The sweep puts it back when its backoff is over; then it maps and is sent.
    wait_until(lambda: hydrate.requeue_due(redis) == 1, timeout=10)
    drain_all(runtime)
    assert collector.message_ids() == ["stripe:in_1SVC87HOQNg4XnOMdHAlqDva:0"]
    assert redis.zcard(hydrate.PENDING) == 0


def test_thin_event_without_api_key_is_a_dead_letter_saying_why(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    collector: Collector,
    now: int,
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"stripe_api_key": None})
    runtime.mapper.hydrator.settings = runtime.settings
    event = thin(
        "v1.invoice.paid",
        "evt_test_65thin0005",
        {"id": "in_1", "type": "invoice", "url": "/v1/invoices/in_1"},
        "evt_snap_5",
        iso(now),
    )
    post_webhook(make_settings(), event)
    drain_all(runtime)
    (entry,) = list(runtime.dead_letters)
    assert "STRIPE_API_KEY" in entry.reason
    assert collector.calls == []


def test_checkout_order_completed_gets_products_from_line_items(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    collector: Collector,
    now: int,
) -> None:
    """Webhooks never carry ``line_items``; this real session was logged after a
    retrieve with ``expand[]=line_items``, so Stripe's own list is served by the API and
    the webhook gets the session without it."""
    session_event = corpus("co_payment_paid_userid_2022", created=now - 60)
    session = session_event["data"]["object"]
    items = session.pop("line_items")
    stripe_api.put_object(f"/v1/checkout/sessions/{SESSION}/line_items", items)
    post_webhook(make_settings(), session_event)
    drain_all(runtime)
    (call,) = collector.calls
    assert call["event"] == "Order Completed"
    # One item: price_1MCRtm... of product prod_MwKY83vgfWUpAr, 2500 USD cents, qty 1.
    assert call["properties"]["products"] == [
        {
            "product_id": "prod_MwKY83vgfWUpAr",
            "name": "Pay as you go (300,000 characters)",
            "price": 25.0,
            "quantity": 1,
        }
    ]
    (request,) = [r for r in stripe_api.requests if "line_items" in r.path]
    assert request.param("expand[0]") == "data.price.product"
    assert request.param("limit") == "100"


def test_without_api_key_checkout_maps_as_today(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    collector: Collector,
    now: int,
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"stripe_api_key": None})
    runtime.mapper.hydrator.settings = runtime.settings
    session_event = corpus("co_payment_paid_userid_2022", created=now - 60)
    del session_event["data"]["object"]["line_items"]
    post_webhook(make_settings(), session_event)
    drain_all(runtime)
    (call,) = collector.calls
    assert call["event"] == "Order Completed"
    assert "products" not in call["properties"]
    assert stripe_api.requests == []


def test_v2_thin_event_fetches_event_and_object_in_its_context(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, redis: Redis, now: int
) -> None:
    from bridge.envelope import Envelope
    from bridge.hydrate import Hydrator

    account = {"id": "acct_1Nv0FGQ9RKHgCVdK", "object": "v2.core.account", "display_name": "Shop"}
    stripe_api.put_object("/v2/core/accounts/acct_1Nv0FGQ9RKHgCVdK", account, account="ctx_1")
    stripe_api.put_object(
        "/v2/core/events/evt_test_65v2",
        {"id": "evt_test_65v2", "object": "v2.core.event", "data": {"changes": ["display_name"]}},
        account="ctx_1",
    )
    event = thin(
        "v2.core.account.updated",
        "evt_test_65v2",
        {
            "id": account["id"],
            "type": "v2.core.account",
            "url": f"/v2/core/accounts/{account['id']}",
        },
        None,
        iso(now),
    )
    event["context"] = "ctx_1"
    envelope = Envelope(
        source="stripe",
        id="evt_test_65v2",
        type="v2.core.account.updated",
        time=float(now),
        received_at=float(now),
        body=event,
    )
    out = Hydrator(redis, make_settings()).hydrate(envelope)
    assert out is not None
    assert out.body["data"] == {"changes": ["display_name"], "object": account}
    assert out.body["account"] == "ctx_1"
    assert out.body["type"] == "v2.core.account.updated"
    # v2 names the context with the Stripe-Context header (the SDK's stripe_context).
    assert {r.headers.get("Stripe-Context") for r in stripe_api.requests} == {"ctx_1"}


def test_a_session_no_rule_reads_line_items_for_costs_no_api_call(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    collector: Collector,
    now: int,
) -> None:
    """Subscription-mode sessions emit nothing (their invoice counts the revenue), and an
    unpaid session fails the order rule's ``when``: no line items are fetched."""
    for name in ("co_subscription_mode_derived", "co_async_unpaid_derived"):
        event = corpus(name, created=now - 60)
        del event["data"]["object"]["line_items"]
        post_webhook(make_settings(), event)
    drain_all(runtime)
    assert collector.calls == []
    assert stripe_api.requests == []
