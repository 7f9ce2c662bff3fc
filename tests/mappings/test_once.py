"""`once:` counts a thing once across events; `remember:` / `recall()` carry facts.

The language tests use a small mapping; the Stripe tests deliver the events of one
payment through the worker's real mapping path (``jobs.map_claim``, the shipped
``mappings/stripe.yaml``, the real Redis) in every order and with repeats, and check
that exactly one ``Order Completed`` comes out, with one messageId.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from redis import Redis

from bridge import codec
from bridge.delivery import jobs
from bridge.delivery.inbox import Claim
from bridge.delivery.runtime import Runtime
from bridge.envelope import Envelope
from bridge.mappings import IdentityStore, MemoryIdentityStore, load_text
from bridge.mappings.identity import (
    FACT_TTL,
    ONCE_TTL,
    BufferedIdentityStore,
    once_key,
)
from tests.conftest import ROOT
from tests.delivery import support

SHOP = """\
provider: stripe
secrets: s
identity:
  customer: data.customer
rules:
  - name: paid
    on: [order.paid, payment.paid]
    once: [data.order, data.payment]
    emit:
      - {type: track, event: Order Completed, properties: {order_id: data.order || data.payment}}
  - name: link
    on: order.linked
    remember:
      order: {key: data.payment, value: data.order}
    emit: []
  - name: refund
    on: refund
    emit:
      - type: track
        event: Order Refunded
        properties: {order_id: "recall('order', data.payment) || data.payment"}
"""


def sha16(owner: bytes) -> str:
    """16 hex digits of SHA-1: what a claim keeps of its owner (bridge.kept)."""
    return hashlib.sha1(owner, usedforsecurity=False).hexdigest()[:16]


def claim_shards(redis: Redis) -> list[bytes]:
    """The once-claim shards (``bridge:claims:<bucket>:<shards>:<shard>``)."""
    return [k for k in redis.scan_iter(match="bridge:claims:*") if not k.endswith(b":meta")]


def store_of(redis: Redis) -> IdentityStore:
    return IdentityStore(redis)


def shop_event(event_id: str, event_type: str, **data: str) -> Envelope:
    body = {"id": event_id, "type": event_type, "data": {"customer": "cus_1", **data}}
    return Envelope("shop", event_id, event_type, 1700000000.0, 0.0, body)


@pytest.fixture
def shop() -> Any:
    mapping, problems = load_text(SHOP, "shop", {})
    assert mapping is not None, problems
    return mapping


def test_the_first_event_to_claim_emits_and_others_of_the_same_thing_do_not(
    shop: Any, redis: Redis
) -> None:
    store = IdentityStore(redis)
    first = shop.evaluate(shop_event("e1", "order.paid", order="o1", payment="p1"), store)
    assert [c["messageId"] for c in first] == ["shop:o1:0"]
    # What it was counted as (the first id) and by which event and rule.
    # Kept as what it was counted as and 16 hex digits of SHA-1 of the owner.
    owner = sha16(b"o1\te1@0.0/paid")
    assert store.claimed("shop", "o1") == f"o1\t{owner}"
    assert store.claimed("shop", "p1") == f"o1\t{owner}"
    assert store.counted("shop", "p1") == "o1"
    assert redis.get(once_key("shop", "o1")) is None  # the old layout: not written
    assert all(0 < redis.ttl(k) <= ONCE_TTL + ONCE_TTL // 8 for k in claim_shards(redis))
    # Another event naming only the payment: the same payment, nothing emitted.
    assert shop.evaluate(shop_event("e2", "payment.paid", payment="p1"), store) == []
    # The claiming event mapped again (a recovered chunk): the same call again.
    again = shop.evaluate(shop_event("e1", "order.paid", order="o1", payment="p1"), store)
    assert again == first


def test_a_refused_claim_spreads_to_the_ids_the_owner_did_not_name(shop: Any, redis: Redis) -> None:
    store = IdentityStore(redis)
    assert shop.evaluate(shop_event("e1", "payment.paid", payment="p1"), store)
    # e2 knows the order and the payment; it loses, and teaches the order id the owner.
    assert shop.evaluate(shop_event("e2", "order.paid", order="o1", payment="p1"), store) == []
    owner = sha16(b"p1\te1@0.0/paid")
    assert store.claimed("shop", "o1") == f"p1\t{owner}"
    # So an event that names only the order is refused too.
    assert shop.evaluate(shop_event("e3", "order.paid", order="o1"), store) == []


def test_an_event_without_any_once_id_is_a_mapping_error(shop: Any) -> None:
    from bridge.errors import MappingError

    with pytest.raises(MappingError, match="once: no id to count this event once by"):
        shop.evaluate(shop_event("e1", "order.paid"), MemoryIdentityStore())


def test_remember_and_recall(shop: Any, redis: Redis) -> None:
    store = BufferedIdentityStore(IdentityStore(redis))
    assert shop.evaluate(shop_event("e1", "order.linked", order="o9", payment="p9"), store) == []
    refund = shop.evaluate(shop_event("e2", "refund", payment="p9"), store)
    assert refund[0]["properties"] == {"order_id": "o9"}  # read back within the chunk
    store.flush()
    assert IdentityStore(redis).lookup("shop", ["order:p9"]) == ["o9"]
    assert redis.get("bridge:identity:shop:order:p9") is None  # the old layout: not written
    # Facts are about payments, not people: they expire (a customer's user does not),
    # with their bucket: at most an eighth of the TTL later than FACT_TTL.
    facts = list(redis.scan_iter(match="bridge:facts:*:*:*"))
    assert facts
    assert all(0 < redis.ttl(k) <= FACT_TTL + FACT_TTL // 8 for k in facts)
    unknown = shop.evaluate(shop_event("e3", "refund", payment="p0"), IdentityStore(redis))
    assert unknown[0]["properties"] == {"order_id": "p0"}


def test_lint_once_without_calls_and_bad_remember_kind() -> None:
    text = SHOP.replace(
        "    remember:\n      order:", "    once: data.x\n    remember:\n      Order:"
    )
    _, problems = load_text(text, "shop", {})
    messages = [p.message for p in problems]
    assert "rule 'link': `once` needs calls to count" in messages
    assert "rule 'link': remember kind 'Order' is not a lower-case name" in messages


def test_a_preview_shows_the_calls_and_claims_nothing(shop: Any, redis: Redis) -> None:
    from bridge.mappings.identity import ReadOnlyIdentityStore

    preview = ReadOnlyIdentityStore(IdentityStore(redis))
    assert shop.evaluate(shop_event("e1", "payment.paid", payment="p1"), preview)
    assert store_of(redis).claimed("shop", "p1") is None
    assert list(redis.scan_iter(match="bridge:claims:*")) == []


CONNECT = """\
provider: stripe
secrets: s
options:
  account: {from: account, action: tag}
identity:
  customer: data.customer
rules:
  - name: paid
    on: payment.paid
    once: data.payment
    emit:
      - {type: track, event: Order Completed, properties: {order_id: data.payment}}
  - name: refund
    on: refund
    emit:
      - {type: track, event: Order Refunded, properties: {order_id: "counted(data.payment)"}}
"""


def test_connected_accounts_count_their_own_payments(redis: Redis) -> None:
    mapping, problems = load_text(CONNECT, "shop", {})
    assert mapping is not None, problems
    store = IdentityStore(redis)

    def event(event_id: str, event_type: str, account: str) -> Envelope:
        body = {"id": event_id, "account": account, "data": {"customer": "c", "payment": "p1"}}
        return Envelope("shop", event_id, event_type, 1700000000.0, 0.0, body)

    # The same payment id in two accounts: two payments.
    assert mapping.evaluate(event("e1", "payment.paid", "acct_a"), store)
    assert mapping.evaluate(event("e2", "payment.paid", "acct_b"), store)
    assert mapping.evaluate(event("e3", "payment.paid", "acct_a"), store) == []
    owner = sha16(b"acct_a/p1\te1@0.0/paid")
    assert store.claimed("shop", "acct_a/p1") == f"acct_a/p1\t{owner}"
    # counted() answers within the account, without its prefix.
    refund = mapping.evaluate(event("e4", "refund", "acct_b"), store)
    assert refund[0]["properties"] == {"order_id": "p1"}


# --- one Stripe payment through the worker's mapping path ---------------------------------

CUSTOMER = "cus_once"
INVOICE = "in_once"
INTENT = "pi_once"
SESSION = "cs_once"


def _event(event_id: str, event_type: str, obj: dict[str, Any]) -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": 1700000000,
        "livemode": True,
        "data": {"object": obj},
    }
    return Envelope.encode(
        source="stripe",
        id=event_id,
        type=event_type,
        time=1700000000.0,
        received_at=1700000001.0,
        raw=json.dumps(body).encode(),
    )


#: One payment of 20.00 USD: a Checkout Session that created an invoice, the invoice,
#: and the PaymentIntent (pre-basil shapes: every one of them could count it alone).
PAYMENT = {
    "session": _event(
        "evt_session",
        "checkout.session.completed",
        {
            "id": SESSION,
            "object": "checkout.session",
            "mode": "payment",
            "payment_status": "paid",
            "payment_intent": INTENT,
            "invoice": INVOICE,
            "customer": CUSTOMER,
            "client_reference_id": "user_once",
            "amount_total": 2000,
            "amount_subtotal": 2000,
            "currency": "usd",
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        },
    ),
    "invoice": _event(
        "evt_invoice",
        "invoice.paid",
        {
            "id": INVOICE,
            "object": "invoice",
            "customer": CUSTOMER,
            "payment_intent": INTENT,
            "amount_paid": 2000,
            "total": 2000,
            "subtotal": 2000,
            "tax": None,
            "currency": "usd",
            "lines": {"data": []},
        },
    ),
    "intent": _event(
        "evt_intent",
        "payment_intent.succeeded",
        {
            "id": INTENT,
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 2000,
            "amount_received": 2000,
            "currency": "usd",
            "customer": CUSTOMER,
            "invoice": None,
        },
    ),
}


@pytest.fixture
def runtime(redis_url: str) -> Iterator[Runtime]:
    settings = support.settings(
        redis_url,
        "http://127.0.0.1:9/v1/batch",  # never called: these tests only map
        BRIDGE_MAPPINGS_DIR=str(ROOT / "mappings"),
        STRIPE_WEBHOOK_SECRET="whsec_once",
        GITHUB_WEBHOOK_SECRET="g",
        CLERK_WEBHOOK_SECRET="c",
    )
    made = Runtime(settings)
    yield made
    made.close()


def deliver(runtime: Runtime, chunks: list[list[bytes]]) -> list[dict[str, Any]]:
    """Map each chunk as a drain job does; the calls that would be committed."""
    calls: list[dict[str, Any]] = []
    for n, events in enumerate(chunks):
        items, dead = jobs.map_claim(runtime, Claim(f"c{n}", events), Counter())
        assert dead == []
        calls.extend(codec.loads(item.split(b" ", 1)[1]) for item in items)
    return calls


def orders(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c.get("event") == "Order Completed"]


def assert_counted_once(calls: list[dict[str, Any]]) -> str:
    found = orders(calls)
    assert len(found) == 1, [c["messageId"] for c in found]
    props = found[0]["properties"]
    # By hand: the order is the invoice, unless the PaymentIntent (which names none)
    # counted it first; 2000 cents of USD.
    winner = found[0]["messageId"].split(":")[1]
    assert props["order_id"] == (INTENT if winner == INTENT else INVOICE)
    assert props["total"] == Decimal("20.00")
    assert props["currency"] == "USD"
    who = (found[0].get("userId"), found[0].get("anonymousId"))
    assert who in (("user_once", None), (None, f"stripe:{CUSTOMER}"))
    return str(found[0]["messageId"])


ORDERS = list(itertools.permutations(PAYMENT))


REFUND = _event(
    "evt_refund",
    "charge.refunded",
    {
        "id": "ch_once",
        "object": "charge",
        "customer": CUSTOMER,
        "payment_intent": INTENT,
        "invoice": INVOICE,
        "amount": 2000,
        "amount_refunded": 2000,
        "currency": "usd",
    },
)


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(o))
def test_every_order_of_a_payments_events_counts_it_once(
    runtime: Runtime, order: tuple[str, ...]
) -> None:
    calls = deliver(runtime, [[PAYMENT[name]] for name in order] + [[REFUND]])
    message_id = assert_counted_once(calls)
    # Named by the payment, not the event or rule: whichever counted it, one messageId.
    assert message_id == f"stripe:{orders(calls)[0]['properties']['order_id']}:0"
    # The refund joins the order whichever event counted it.
    refund = next(c for c in calls if c.get("event") == "Order Refunded")
    assert refund["properties"]["order_id"] == orders(calls)[0]["properties"]["order_id"]
    assert refund["properties"]["total"] == Decimal("20.00")


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(o))
def test_all_events_in_one_chunk_and_every_repeat_count_once(
    runtime: Runtime, order: tuple[str, ...]
) -> None:
    first = [PAYMENT[name] for name in order]
    # The same chunk, then every event again (Stripe retries, replays), twice.
    calls = deliver(runtime, [first, first[::-1], [PAYMENT[order[1]]], first])
    counted = orders(calls)
    # The claiming event re-emits its call on each repeat, with the same messageId:
    # Segment keeps one. No other event of the payment ever emits one.
    assert len({c["messageId"] for c in counted}) == 1
    assert_counted_once(counted[:1])
    # Only what the identity store learned since may differ (a userId for the anonymousId).
    assert all(c["properties"] == counted[0]["properties"] for c in counted)


def test_a_chunk_that_dies_after_claiming_is_counted_when_it_is_mapped_again(
    runtime: Runtime, redis: Redis
) -> None:
    # The worker maps the session (claiming the payment) and dies before committing.
    lost = deliver(runtime, [[PAYMENT["session"]]])
    assert len(orders(lost)) == 1
    # Meanwhile the invoice and the intent arrive: the payment is claimed, no revenue.
    assert orders(deliver(runtime, [[PAYMENT["invoice"]], [PAYMENT["intent"]]])) == []
    # The recovered chunk maps the session again: its Order Completed comes back, same id.
    again = deliver(runtime, [[PAYMENT["session"]]])
    assert orders(again) == orders(lost)
    assert_counted_once(again)


def test_a_payment_claimed_by_the_release_before_is_not_counted_again(
    runtime: Runtime, redis: Redis
) -> None:
    """An upgrade while a payment's claim is in the old layout (a string key per id)."""
    # The release before mapped the intent (received_at 1700000001.0) and claimed it.
    old = f"{INTENT}\tevt_intent@1700000001.0/payment-intent-order-completed"
    redis.set(once_key("stripe", INTENT), old, ex=ONCE_TTL)
    # The session and the invoice of the same payment, mapped by this release: no revenue.
    assert orders(deliver(runtime, [[PAYMENT["session"]], [PAYMENT["invoice"]]])) == []
    # The intent's chunk had died before committing: mapped again now, it finds its own
    # claim and emits its Order Completed, once.
    again = deliver(runtime, [[PAYMENT["intent"]]])
    assert orders(again)[0]["messageId"].split(":")[1] == INTENT
    assert_counted_once(again)
    # The session's and invoice's own ids learned the old claim in the new layout.
    assert IdentityStore(redis).counted("stripe", INVOICE) == INTENT
    assert IdentityStore(redis).counted("stripe", SESSION) == INTENT


def test_an_event_that_fails_to_map_claims_nothing(runtime: Runtime, redis: Redis) -> None:
    broken = dict(Envelope.decode(PAYMENT["invoice"]).body["data"]["object"])
    broken["currency"] = "not a currency"
    bad = _event("evt_broken", "invoice.paid", broken)
    items, dead = jobs.map_claim(runtime, Claim("c0", [bad]), Counter())
    assert items == []
    assert [d.reason.split(":")[0] for d in dead] == ["mapping_error"]
    assert IdentityStore(redis).claimed("stripe", INVOICE) is None
    assert_counted_once(deliver(runtime, [[PAYMENT["intent"]], [PAYMENT["invoice"]]]))


BASIL = {
    # basil: the invoice names no payment intent and the intent no invoice.
    "invoice": _event(
        "evt_b_invoice",
        "invoice.paid",
        {
            "id": INVOICE,
            "object": "invoice",
            "customer": CUSTOMER,
            "amount_paid": 2000,
            "total": 2000,
            "total_excluding_tax": 2000,
            "total_taxes": [],
            "currency": "usd",
            "lines": {"data": []},
        },
    ),
    "invoice_payment": _event(
        "evt_b_inpay",
        "invoice_payment.paid",
        {
            "id": "inpay_once",
            "object": "invoice_payment",
            "invoice": INVOICE,
            "payment": {"type": "payment_intent", "payment_intent": INTENT},
            "amount_paid": 2000,
            "currency": "usd",
        },
    ),
    "intent": _event(
        "evt_b_intent",
        "payment_intent.succeeded",
        {
            "id": INTENT,
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 2000,
            "amount_received": 2000,
            "currency": "usd",
            "customer": CUSTOMER,
        },
    ),
    "refund": _event(
        "evt_b_refund",
        "charge.refunded",
        {
            "id": "ch_once",
            "object": "charge",
            "customer": CUSTOMER,
            "payment_intent": INTENT,
            "amount": 2000,
            "amount_refunded": 500,
            "currency": "usd",
        },
    ),
}


def test_a_basil_dispute_joins_the_invoice_and_its_customer(runtime: Runtime) -> None:
    dispute = _event(
        "evt_b_dispute",
        "charge.dispute.created",
        {
            "id": "dp_once",
            "charge": "ch_once",
            "payment_intent": INTENT,
            "amount": 2000,
            "currency": "usd",
            "reason": "fraudulent",
            "status": "needs_response",
        },
    )
    # No payment_intent.succeeded: the endpoint may not subscribe to it.
    calls = deliver(runtime, [[BASIL["invoice"], BASIL["invoice_payment"]], [dispute]])
    assert_counted_once(calls)
    disputed = [c for c in calls if c.get("event") == "Order Disputed"]
    assert [(d["properties"]["order_id"], d.get("anonymousId")) for d in disputed] == [
        (INVOICE, f"stripe:{CUSTOMER}")
    ]


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["invoice", "invoice_payment", "intent"]))
)
def test_basil_payment_counts_once_and_its_refund_joins_the_order(
    runtime: Runtime, order: tuple[str, ...]
) -> None:
    calls = deliver(runtime, [[BASIL[name]] for name in order] + [[BASIL["refund"]]])
    assert_counted_once(calls)
    refunds = [c for c in calls if c.get("event") == "Order Refunded"]
    assert len(refunds) == 1
    # The basil charge names only its intent; invoice_payment.paid taught the invoice.
    assert refunds[0]["properties"]["order_id"] == INVOICE
    assert refunds[0]["properties"]["total"] == Decimal("5.00")
    assert refunds[0].get("anonymousId") == f"stripe:{CUSTOMER}"


def test_the_same_id_delivered_again_later_counts_nothing(shop: Any, redis: Redis) -> None:
    # Providers whose event id is derived from the payment's state (WooCommerce
    # `order:<id>:paid`, Square `payment:<id>:COMPLETED`) send the same id again when the
    # order is edited; past the dedup window intake stores it as a new envelope. Only the
    # envelope that claimed re-emits (a crash re-maps it); a new one counts nothing.
    store = IdentityStore(redis)
    first = shop_event("order:o1:paid", "order.paid", order="o1")
    assert [c["messageId"] for c in shop.evaluate(first, store)] == ["shop:o1:0"]
    assert [c["messageId"] for c in shop.evaluate(first, store)] == ["shop:o1:0"]  # re-mapped
    later = Envelope("shop", first.id, first.type, first.time, 864000.0, first.body)
    assert shop.evaluate(later, store) == []
