"""Every real Stripe payload we hold maps to the calls written here by hand.

The payloads: ``../shared/fixtures/stripe-corpus/payloads`` (64 public payloads of API
versions 2019 to 2025 basil, and variants of them; SOURCES.md says where each comes
from) and the developers' ``../shared/fixtures/payloads/stripe*.json``. Each is mapped
alone with an empty identity store, so who a call is about comes from the payload.

Every expected value below was worked out from the payload and the Segment spec, not
taken from bridge's output: E-commerce v2 ``Order Completed`` — ``total`` what was paid
(tax and shipping included), ``subtotal`` after discounts and before tax and shipping,
``revenue`` excluding tax and shipping; B2B SaaS trials (``trial_start_date``,
``trial_end_date``, ``trial_plan_name``); ``mrr`` = sum of unit amount x quantity per month.
Amounts are compared as numbers (``Decimal("19.90") == 19.9``). Timestamps are the
event's ``created`` in UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from bridge import __version__
from bridge.catalogue import Catalogue
from bridge.envelope import Envelope
from bridge.mappings import IdentityStore, Mapping, MemoryIdentityStore
from tests.conftest import PAYLOADS, ROOT

CORPUS = ROOT.parent / "shared" / "fixtures" / "stripe-corpus" / "payloads"
ENV = {
    "STRIPE_WEBHOOK_SECRET": "whsec_a",
    "GITHUB_WEBHOOK_SECRET": "g",
    "CLERK_WEBHOOK_SECRET": "c",
}

# ids that recur below
U22 = "667805b6-5823-444c-92ea-4da400131631"  # client_reference_id of the 2022 session
CS22 = "cs_test_a1IdO3cRAiDtsfYm6c8sKoFbyLpxibkNrDf56cVIkv5IylfNuzl155fePm"
PI22 = "pi_3MDCMbJzvcwj3o2q009QLB2A"
CS20 = "cs_test_a11PduYxe7O1AfeDFU2WAyjw2FEv2PLG58ttdtieZr8hx6cJzkULYUiLoQ"
PI20 = "pi_3KboGzJ01yyFZ0ZA0ezqQmJw"
CS_SUPA = "cs_live_9RBjcHiy2i5p99Tf1MYM90c3SHK1grU0E6Ae6pKWR2KPA4ZiuKiB2X1Y3X"
PI_SUPA = "pi_1IqxJOJDPojXS6LN9uOebAea"
CUS_SUPA = "cus_IhGfebO16cMIGN"
IN_NOMAMI = "in_1SVC87HOQNg4XnOMdHAlqDva"
SUB_NOMAMI = "sub_1SVC89HOQNg4XnOMoa93kOB2"
TIMES = "\u00d7"  # the multiplication sign Stripe writes in line descriptions
NOMAMI_LINE = f"1 {TIMES} noMami - Assinatura Mensal (a R$ 29.90 / month)"
SUB_TAISEEN = "sub_1SFxYRHje2ICnTUdc5Unj2nU"
PRICE_TAISEEN = "price_1SFXpaHje2ICnTUdiJ5wGeN4"
SUB_SONIC = "sub_1Mqqb6Lt4dXK03v50OA219Ya"
PRICE_SONIC = "price_1Mqqb5Lt4dXK03v5cK9prani"
TRIAL_START = "2023-03-29T04:26:54.000Z"
TRIAL_END = "2023-04-05T04:26:54.000Z"
DSP_BASIL = {
    "order_id": "pi_3RWXidQ8iJWBZFaM0hwfe7LL",
    "charge_id": "ch_3RWXidQ8iJWBZFaM07eC54Yk",
    "dispute_id": "dp_1RWXieQ8iJWBZFaM572opwWo",
    "total": "1.00",
    "currency": "USD",
    "reason": "fraudulent",
}
DSP_2020 = {
    "order_id": "pi_1IqtG9JDPojXS6LNOGnYrIqq",
    "charge_id": "ch_1IqtGAJDPojXS6LNstgEfUji",
    "dispute_id": "dp_1MLuxQJDPojXS6LNrukJCBBG",
    "total": "10.00",
    "currency": "USD",
    "reason": "general",
    "status": "warning_needs_response",
}
ZERO = "0"


def anon(customer: str) -> tuple[str, str]:
    return ("anonymousId", f"stripe:{customer}")


def user(user_id: str) -> tuple[str, str]:
    return ("userId", user_id)


def order(
    who: tuple[str, str], message_id: str, total: str, net: str, **props: Any
) -> dict[str, Any]:
    """An Order Completed; ``net`` is subtotal and revenue (after discounts, without tax
    and shipping); tax, shipping and discount are 0 unless given."""
    return {
        "event": "Order Completed",
        "who": who,
        "messageId": message_id,
        "properties": {
            "total": total,
            "subtotal": net,
            "revenue": net,
            "tax": ZERO,
            "shipping": ZERO,
            "discount": ZERO,
            **props,
        },
    }


def call(event: str, who: tuple[str, str], **props: Any) -> dict[str, Any]:
    return {"event": event, "who": who, "properties": props}


def started(index: int = 0, **kw: Any) -> dict[str, Any]:
    """A call of subscription-created: counted once per subscription, so named by it."""
    sub = kw["subscription_id"] if "subscription_id" in kw else kw["properties"]["subscription_id"]
    return {"messageId": f"stripe:subscription-started:{sub}:{index}"}


#: The 2022 session embeds its expanded line items: one "Pay as you go" item, quantity 1,
#: unit_amount 2500 in *usd* (the derived JPY/KWD/ISK variants change only the session's
#: currency, so the item still reads 25.00).
PRODUCTS22 = [
    {
        "product_id": "prod_MwKY83vgfWUpAr",
        "name": "Pay as you go (300,000 characters)",
        "price": "25.00",
        "quantity": 1,
    }
]


def session_order(who: tuple[str, str], total: str, **props: Any) -> dict[str, Any]:
    """The 2022 session (and its derived variants): client_reference_id U22."""
    props.setdefault("products", PRODUCTS22)
    return order(
        who,
        f"stripe:{PI22}:0",
        total,
        props.pop("net", total),
        order_id=PI22,
        checkout_id=CS22,
        currency=props.pop("currency", "USD"),
        **props,
    )


#: payload file -> the calls it maps to (None: no rule takes its type, intake says
#: "ignored"; []: taken, nothing to emit).
EXPECTED: dict[str, list[dict[str, Any]] | None] = {
    # ---- Checkout --------------------------------------------------------------------
    "co_payment_paid_userid_2022.json": [session_order(user(U22), "25.00")],
    "co_livemode_derived.json": [session_order(user(U22), "25.00")],
    "co_async_unpaid_derived.json": [],  # paid later: async_payment_succeeded counts it
    "co_async_succeeded_derived.json": [session_order(user(U22), "25.00")],
    "co_async_failed_derived.json": [
        call(
            "Payment Failed",
            user(U22),
            order_id=PI22,
            checkout_id=CS22,
            total="25.00",
            currency="USD",
        )
    ],
    # 25.00 - 5.00 coupon = 20.00 paid, all of it revenue.
    "co_discount_derived.json": [
        session_order(user(U22), "20.00", discount="5.00", coupon="SAVE20")
    ],
    # 25.00 of goods + 5.00 shipping = 30.00 paid; revenue 25.00.
    "co_shipping_derived.json": [session_order(user(U22), "30.00", net="25.00", shipping="5.00")],
    "co_jpy_derived.json": [session_order(user(U22), "2500", currency="JPY")],
    "co_kwd_derived.json": [session_order(user(U22), "12.350", currency="KWD")],
    # Stripe writes ISK with two decimals (2500 ISK = 250000).
    "co_isk_derived.json": [session_order(user(U22), "2500", currency="ISK")],
    "co_payment_paid_anon_2020.json": [
        order(
            anon("cus_LIP5IRhcFCA5PK"),
            f"stripe:{PI20}:0",
            "5.00",
            "5.00",
            order_id=PI20,
            checkout_id=CS20,
            currency="USD",
        )
    ],
    # No customer, no user: the guest is known by the payment intent.
    "co_guest_no_ids_derived.json": [
        order(
            anon(PI20),
            f"stripe:{PI20}:0",
            "5.00",
            "5.00",
            order_id=PI20,
            checkout_id=CS20,
            currency="USD",
        )
    ],
    # 9.99 EUR with 0.65 VAT included in the price: revenue 9.34.
    "co_inclusive_tax_eur_derived.json": [
        order(
            anon(CUS_SUPA),
            f"stripe:{PI_SUPA}:0",
            "9.99",
            "9.34",
            tax="0.65",
            order_id=PI_SUPA,
            checkout_id=CS_SUPA,
            currency="EUR",
        )
    ],
    # The same session with its invoice: the order is the invoice.
    "co_payment_with_invoice_2020.json": [
        order(
            anon(CUS_SUPA),
            "stripe:in_1KJqKBJDPojXS6LNJbvLUgEy:0",
            "9.99",
            "9.34",
            tax="0.65",
            order_id="in_1KJqKBJDPojXS6LNJbvLUgEy",
            checkout_id=CS_SUPA,
            currency="EUR",
        )
    ],
    "co_subscription_mode_derived.json": [],  # its first invoice carries the revenue
    # ---- payment intents ---------------------------------------------------------------
    "payment_intent_succeeded_2020_unmapped.json": [],  # status requires_payment_method
    # ---- invoices ----------------------------------------------------------------------
    "inv_paid_acacia_subscription_cycle.json": [
        order(
            anon("cus_corpus_gofoks"),
            "stripe:in_corpus_gofoks_0002:0",
            "0.95",
            "0.95",
            order_id="in_corpus_gofoks_0002",
            currency="USD",
            products=[
                {
                    "product_id": "prod_corpus_gofoks",
                    "sku": "price_corpus_gofoks_day",
                    "name": f"1 {TIMES} Dingo 2 Eta (at $0.95 / day)",
                    "quantity": 1,
                    "price": "0.95",
                }
            ],
            billing_reason="subscription_cycle",
            subscription_id="sub_corpus_gofoks",
            invoice_number="C0381EFB-0002",
        )
    ],
    "inv_paid_basil_subscription_create_usd.json": [
        order(
            anon("cus_corpus_gofoks"),
            "stripe:in_corpus_gofoks_0001:0",
            "1.90",
            "1.90",
            order_id="in_corpus_gofoks_0001",
            currency="USD",
            products=[
                {
                    "product_id": "prod_corpus_gofoks",
                    "sku": "price_corpus_gofoks_day",
                    "name": f"1 {TIMES} Dingo 2 Eta (at $0.95 / day)",
                    "quantity": 1,
                    "price": "1.90",
                }
            ],
            billing_reason="subscription_create",
            subscription_id="sub_corpus_gofoks",
            invoice_number="E4SH3PJZ-0001",
        )
    ],
    **{
        name: [
            order(
                anon("cus_TS6KX04w045BN9"),
                f"stripe:{IN_NOMAMI}:0",
                amount,
                amount,
                order_id=IN_NOMAMI,
                currency=currency,
                products=[
                    {
                        "product_id": "prod_TRs00eb9Wd4ZEJ",
                        "sku": "price_1SUyGiHOQNg4XnOMHSqLxNl9",
                        "name": NOMAMI_LINE,
                        "quantity": 1,
                        "price": amount,
                    }
                ],
                billing_reason="subscription_create",
                subscription_id=SUB_NOMAMI,
                invoice_number="M8V0KX57-0001",
            )
        ]
        for name, amount, currency in [
            ("inv_paid_basil_subscription_create.json", "29.90", "BRL"),
            ("inv_paid_basil_jpy_derived.json", "2990", "JPY"),
            ("inv_paid_basil_kwd_derived.json", "29.900", "KWD"),
        ]
    },
    # 20.00 with 2.61 tax included: revenue 17.39 (no total_excluding_tax in 2019).
    "inv_paid_inclusive_tax_djstripe.json": [
        order(
            anon("cus_6lsBvm5rJ0zyHc"),
            "stripe:in_fakefakefakefakefake0001:0",
            "20.00",
            "17.39",
            tax="2.61",
            order_id="in_fakefakefakefakefake0001",
            currency="USD",
            billing_reason="subscription_create",
            subscription_id="sub_fakefakefakefakefake0001",
            invoice_number="E5B23224-0001",
        )
    ],
    "inv_paid_inclusive_tax_djstripe_40.json": [
        order(
            anon("cus_6lsBvm5rJ0zyHc"),
            "stripe:in_fakefakefakefakefake0004:0",
            "40.00",
            "34.78",
            tax="5.22",
            order_id="in_fakefakefakefakefake0004",
            currency="USD",
            products=[
                {
                    "product_id": "prod_fake1",
                    "sku": "silver41294",
                    "name": f"1 {TIMES} Fake Product (at $40.00 / month)",
                    "quantity": 1,
                    "price": "40.00",
                }
            ],
            billing_reason="subscription_create",
            subscription_id="sub_fakefakefakefakefake0002",
            invoice_number="E5B23224-0002",
        )
    ],
    # Lines 6 + 3 T-shirts at 29.00 = 261.00; discounts 25.23 + 8.70 = 33.93; net
    # 227.07; 18.05 tax on top: 245.12 paid.
    "inv_paid_manual_discount_tax_2025.json": [
        order(
            anon("cus_S9YwWMaQEgeJYO"),
            "stripe:in_1RFFohKXBGcbgpbZk9MxzDMc:0",
            "245.12",
            "227.07",
            tax="18.05",
            discount="33.93",
            coupon="10OFF",
            order_id="in_1RFFohKXBGcbgpbZk9MxzDMc",
            currency="USD",
            products=[
                {
                    "product_id": "prod_IxQQWtyij0rvGp",
                    "sku": "price_1KOpJJKXBGcbgpbZyDoF66XQ",
                    "name": "T-Shirt",
                    "quantity": quantity,
                    "price": "29.00",
                }
                for quantity in (6, 3)
            ],
            billing_reason="manual",
            invoice_number="228BBE4A-0001",
        )
    ],
    "inv_paid_zero_amount_2020.json": [],  # nothing paid, nothing counted
    "inv_payment_succeeded_basil_live.json": None,  # invoice.paid counts the same payment
    "inv_payment_failed_2025.json": [
        call(
            "Payment Failed",
            anon("cus_1234"),
            order_id="in_1234",
            invoice_id="in_1234",
            total="249.00",
            currency="USD",
            attempt_count=1,
            billing_reason="subscription_cycle",
            subscription_id="sub_1234",
            next_payment_attempt="2025-04-25T03:46:23.000Z",
        )
    ],
    "invoice_voided_2020_unmapped.json": [
        call(
            "Invoice Voided",
            anon("cus_JsuO3bmrj0QlAw"),
            order_id="in_1KJqKBJDPojXS6LNJbvLUgEy",
            total="0.00",
            currency="USD",
            subscription_id="sub_JsuPyCPhXWfZar",
            invoice_number="60229DE7-0007",
        )
    ],
    "credit_note_created_2020_unmapped.json": [
        call(
            "Credit Note Issued",
            anon("cus_NjLgPhUokHubJC"),
            credit_note_id="cn_1MxvRqLkdIwHu7ixY0xbUcxk",
            order_id="in_1MxvRkLkdIwHu7ixABNtI99m",
            total="10.99",
            currency="USD",
            type="pre_payment",
            credit_note_number="C9E0C52C-0036-CN-01",
        )
    ],
    # ---- refunds (this event's amount: amount_refunded - previous amount_refunded) -----
    "ref_full_invoice_charge_2020.json": [
        call(
            "Order Refunded",
            anon("cus_J7Mkgr8mvbl1eK"),
            order_id="in_1KJdKkJDPojXS6LNSwSWkZSN",
            charge_id="ch_3Kl36gJDPojXS6LN0DCM4A8l",
            total="25.00",
            currency="USD",
        )
    ],
    "ref_partial_second_derived.json": [
        call(
            "Order Refunded",
            anon("cus_J7Mkgr8mvbl1eK"),
            order_id="in_1KJdKkJDPojXS6LNSwSWkZSN",
            charge_id="ch_3Kl36gJDPojXS6LN0DCM4A8l",
            total="5.00",
            currency="USD",
        )
    ],
    "ref_partial_third_derived.json": [
        call(
            "Order Refunded",
            anon("cus_J7Mkgr8mvbl1eK"),
            order_id="in_1KJdKkJDPojXS6LNSwSWkZSN",
            charge_id="ch_3Kl36gJDPojXS6LN0DCM4A8l",
            total="10.00",
            currency="USD",
        )
    ],
    # A charge without invoice or payment intent (2022, a direct charge): order = charge.
    "ref_full_legacy_charge_live.json": [
        call(
            "Order Refunded",
            anon("cus_OOZK3PoLrv6OKo"),
            order_id="ch_3NtYaBLelvCURGkU1YaN66W1",
            charge_id="ch_3NtYaBLelvCURGkU1YaN66W1",
            total="5.00",
            currency="USD",
        )
    ],
    "ref_partial_jpy_derived.json": [
        call(
            "Order Refunded",
            anon("cus_OOZK3PoLrv6OKo"),
            order_id="ch_3NtYaBLelvCURGkU1YaN66W1",
            charge_id="ch_3NtYaBLelvCURGkU1YaN66W1",
            total="2000",
            currency="JPY",
        )
    ],
    "ref_partial_kwd_derived.json": [
        call(
            "Order Refunded",
            anon("cus_OOZK3PoLrv6OKo"),
            order_id="ch_3NtYaBLelvCURGkU1YaN66W1",
            charge_id="ch_3NtYaBLelvCURGkU1YaN66W1",
            total="1.250",
            currency="KWD",
        )
    ],
    # No previous_attributes: the first partial refund, 5.00 of 15.00.
    "ref_partial_first_no_prev.json": [
        call(
            "Order Refunded",
            anon("cus_0dUMWLtzCTagWs"),
            order_id="pm_1234",
            charge_id="ch_chargeid",
            total="5.00",
            currency="USD",
            reason="requested_by_customer",
        )
    ],
    "refund_updated_basil_unmapped.json": [],  # metadata changed; the refund did not fail
    # ---- disputes ----------------------------------------------------------------------
    "dsp_created_basil.json": [
        call(
            "Order Disputed",
            anon("pi_3RWXidQ8iJWBZFaM0hwfe7LL"),
            **DSP_BASIL,
            status="needs_response",
        )
    ],
    "dsp_closed_basil_unmapped.json": [
        call(
            "Order Dispute Closed",
            anon("pi_3RWXidQ8iJWBZFaM0hwfe7LL"),
            **DSP_BASIL,
            status="warning_closed",
        )
    ],
    "dsp_created_2020.json": [
        call("Order Disputed", anon("pi_1IqtG9JDPojXS6LNOGnYrIqq"), **DSP_2020)
    ],
    "dsp_funds_withdrawn_2020_unmapped.json": [
        call("Order Dispute Funds Withdrawn", anon("pi_1IqtG9JDPojXS6LNOGnYrIqq"), **DSP_2020)
    ],
    # ---- customers ---------------------------------------------------------------------
    "cus_created_djstripe.json": [
        {
            "type": "identify",
            "who": anon("cus_6lsBvm5rJ0zyHc"),
            "traits": {
                "email": "michael.smith@example.com",
                "createdAt": "2019-05-16T08:26:06.000Z",
                "stripe_customer_id": "cus_6lsBvm5rJ0zyHc",
            },
        }
    ],
    "cus_created_with_user_id_derived.json": [
        {
            "type": "identify",
            "who": user("u_1001"),
            "traits": {
                "email": "michael.smith@example.com",
                "createdAt": "2019-05-16T08:26:06.000Z",
                "stripe_customer_id": "cus_6lsBvm5rJ0zyHc",
            },
        }
    ],
    "cus_updated_2020.json": [
        {
            "type": "identify",
            "who": anon("cus_LvhVVlIHIM4om8"),
            "traits": {
                "name": "Test 4",
                "createdAt": "2022-06-23T13:29:51.000Z",
                "stripe_customer_id": "cus_LvhVVlIHIM4om8",
            },
        }
    ],
    "cus_updated_basil.json": [
        {
            "type": "identify",
            "who": anon("cus_SR8o2vcGRkVb6v"),
            "traits": {
                "name": "Integration Test UPDATED 2025-06-04T12:35:09Z",
                "address": {"country": "FR"},
                "createdAt": "2025-06-04T12:34:59.000Z",
                "stripe_customer_id": "cus_SR8o2vcGRkVb6v",
            },
        }
    ],
    "cus_updated_supabase_2020.json": [
        {
            "type": "identify",
            "who": anon(CUS_SUPA),
            "traits": {
                "email": "billz@supabase.io",
                "name": "Copple",
                "phone": "+6587498462",
                "createdAt": "2021-01-04T12:25:41.000Z",
                "stripe_customer_id": CUS_SUPA,
            },
        }
    ],
    # ---- subscriptions -----------------------------------------------------------------
    "sub_created_active_2025.json": [
        {
            **call(
                "Subscription Started",
                anon("cus_TA4eA8GQAss9bI"),
                subscription_id=SUB_TAISEEN,
                plan=PRICE_TAISEEN,
                mrr="19.00",
                currency="USD",
                interval="month",
                status="active",
            ),
            "messageId": f"stripe:subscription-started:{SUB_TAISEEN}:0",
        }
    ],
    "sub_created_incomplete_derived.json": [],  # default_incomplete: not started yet
    # Free plan, no top-level currency (2020): the price's currency; 0 a month.
    "sub_created_free_plan_2020.json": [
        started(subscription_id="sub_JdIzvfy6o5GZRd")
        | call(
            "Subscription Started",
            anon(CUS_SUPA),
            subscription_id="sub_JdIzvfy6o5GZRd",
            plan="price_1IDQm5JDPojXS6LNM31hxKzp",
            mrr="0.00",
            currency="USD",
            interval="month",
            status="active",
        )
    ],
    # Two items, 20.00 + 40.00 a month, no top-level currency or plan (2019).
    "sub_created_two_items_djstripe.json": [
        started(subscription_id="sub_fakefakefakefakefake0004")
        | call(
            "Subscription Started",
            anon("cus_4UbFSo9tl62jqj"),
            subscription_id="sub_fakefakefakefakefake0004",
            plan="New plan name",
            mrr="60.00",
            currency="USD",
            interval="month",
            status="active",
        )
    ],
    "sub_created_trialing_derived.json": [
        started(subscription_id=SUB_SONIC)
        | call(
            "Subscription Started",
            anon("cus_Nc4kL4EPtG5SKe"),
            subscription_id=SUB_SONIC,
            plan=PRICE_SONIC,
            mrr="42.42",
            currency="USD",
            interval="month",
            status="trialing",
            trial_end_date=TRIAL_END,
        ),
        started(1, subscription_id=SUB_SONIC)
        | call(
            "Trial Started",
            anon("cus_Nc4kL4EPtG5SKe"),
            subscription_id=SUB_SONIC,
            trial_start_date=TRIAL_START,
            trial_end_date=TRIAL_END,
            trial_plan_name=PRICE_SONIC,
        ),
    ],
    "sub_updated_trial_to_active_2024.json": [
        call(
            "Trial Ended",
            anon("cus_Nc4kL4EPtG5SKe"),
            subscription_id=SUB_SONIC,
            trial_start_date=TRIAL_START,
            trial_end_date=TRIAL_END,
            trial_plan_name=PRICE_SONIC,
            converted=True,
            status="active",
        )
    ],
    "sub_trial_will_end_derived.json": [
        call(
            "Trial Ending Soon",
            anon("cus_Nc4kL4EPtG5SKe"),
            subscription_id=SUB_SONIC,
            trial_start_date=TRIAL_START,
            trial_end_date=TRIAL_END,
            trial_plan_name=PRICE_SONIC,
        )
    ],
    "sub_trial_will_end_pay.json": [
        call(
            "Trial Ending Soon",
            anon("cus_00000000000000"),
            subscription_id="sub_00000000000000",
            trial_start_date="2022-11-06T19:11:35.000Z",
            trial_end_date="2022-11-20T19:19:43.000Z",
            trial_plan_name="some-plan",
        )
    ],
    "sub_updated_cancel_scheduled_derived.json": [
        call(
            "Subscription Cancellation Scheduled",
            anon("cus_TA4eA8GQAss9bI"),
            subscription_id=SUB_TAISEEN,
            cancel_at="2025-11-08T13:37:17.000Z",
            reason="cancellation_requested",
            feedback="too_expensive",
        )
    ],
    "sub_updated_reactivated_derived.json": [
        call(
            "Subscription Reactivated",
            anon("cus_TA4eA8GQAss9bI"),
            subscription_id=SUB_TAISEEN,
            status="active",
        )
    ],
    "sub_updated_past_due_derived.json": [
        call(
            "Subscription Past Due",
            anon("cus_TA4eA8GQAss9bI"),
            subscription_id=SUB_TAISEEN,
            latest_invoice="in_corpus_renewal_failed",
            status="past_due",
        )
    ],
    # 1 -> 5 seats at 19.00 a month.
    "sub_updated_seats_up_derived.json": [
        call(
            "Subscription Upgraded",
            anon("cus_TA4eA8GQAss9bI"),
            subscription_id=SUB_TAISEEN,
            plan=PRICE_TAISEEN,
            previous_plan=PRICE_TAISEEN,
            mrr="95.00",
            previous_mrr="19.00",
            currency="USD",
            interval="month",
        )
    ],
    # 19.00 a month -> 190.00 a year = 15.83 a month: MRR falls.
    "sub_updated_month_to_year_derived.json": [
        call(
            "Subscription Downgraded",
            anon("cus_TA4eA8GQAss9bI"),
            subscription_id=SUB_TAISEEN,
            plan="price_corpus_yearly",
            previous_plan=PRICE_TAISEEN,
            mrr="15.83",
            previous_mrr="19.00",
            currency="USD",
            interval="year",
        )
    ],
    "sub_updated_upgrade_derived.json": [
        call(
            "Subscription Upgraded",
            anon("cus_6lsBvm5rJ0zyHc"),
            subscription_id="sub_fakefakefakefakefake0001",
            plan="New plan name",
            previous_plan="New plan name",
            mrr="40.00",
            previous_mrr="20.00",
            currency="USD",
            interval="month",
        )
    ],
    "sub_updated_downgrade_derived.json": [
        call(
            "Subscription Downgraded",
            anon("cus_6lsBvm5rJ0zyHc"),
            subscription_id="sub_fakefakefakefakefake0001",
            plan="New plan name",
            previous_plan="New plan name",
            mrr="20.00",
            previous_mrr="40.00",
            currency="USD",
            interval="month",
        )
    ],
    "sub_updated_metadata_only_2020.json": [],
    "sub_deleted_2020.json": [
        call(
            "Subscription Cancelled",
            anon(CUS_SUPA),
            subscription_id="sub_JdIzvfy6o5GZRd",
            plan="price_1IDQm5JDPojXS6LNM31hxKzp",
            mrr="0.00",
            currency="USD",
            canceled_at="2021-06-08T10:45:02.000Z",
            ended_at="2021-06-08T10:45:02.000Z",
        )
    ],
    "sub_deleted_2022.json": [
        call(
            "Subscription Cancelled",
            anon("cus_LhE421nYqWBGDm"),
            subscription_id="sub_1Kzpc6J01yyFZ0ZARR510pvV",
            plan="price_1KzS52J01yyFZ0ZAqY8Jar7V",
            mrr="29.00",
            currency="USD",
            canceled_at="2022-05-16T18:35:39.000Z",
            ended_at="2022-05-16T18:35:39.000Z",
        )
    ],
    # ---- the developers' fixtures (../shared/fixtures/payloads) ------------------------
    "stripe__checkout.session.completed.json": [
        order(
            anon("cus_00000000000000"),
            "stripe:pi_000000000000000000000000:0",
            "30.00",
            "30.00",
            order_id="pi_000000000000000000000000",
            checkout_id="cs_test_" + "0" * 58,
            currency="USD",
        )
    ],
    "stripe__checkout.session.completed.payment_mode.json": [
        order(
            anon("cus_00000000000000"),
            "stripe:pi_00000000000000:0",
            "250.00",
            "250.00",
            order_id="pi_00000000000000",
            checkout_id="cs_00000000000000",
            currency="USD",
        )
    ],
    "stripe__invoice.paid.json": [
        order(
            anon("cus_00000000000000"),
            "stripe:in_000000000000000000000000:0",
            "20.00",
            "20.00",
            order_id="in_000000000000000000000000",
            currency="USD",
            products=[
                {
                    "product_id": "prod_00000000000000",
                    "sku": "price_000000000000000000000000",
                    "name": "(created by Stripe CLI)",
                    "quantity": 1,
                    "price": "20.00",
                }
            ],
            billing_reason="manual",
            invoice_number="EE1DF78D-0001",
        )
    ],
    # basil, zulip: 25 licences at 40.00; metadata.user_id names the user.
    "stripe_basil__invoice.paid.zulip.json": [
        order(
            user("10"),
            "stripe:add_minimum_licenses--Event.list.2.json:0",
            "1000.00",
            "1000.00",
            order_id="add_minimum_licenses--Event.list.2.json",
            currency="USD",
            products=[
                {
                    "product_id": "prod_NORMALIZED",
                    "sku": "price_NORMALIZED",
                    "name": "Zulip Cloud Standard",
                    "quantity": 25,
                    "price": "40.00",
                }
            ],
            billing_reason="manual",
            invoice_number="NORMALIZED",
        )
    ],
    # invoice null, customer null: a payment outside Invoicing, by a guest.
    "stripe__payment_intent.succeeded.json": [
        {
            **call(
                "Order Completed",
                anon("pi_000000000000000000000000"),
                order_id="pi_000000000000000000000000",
                total="20.00",
                currency="USD",
            ),
            "messageId": "stripe:pi_000000000000000000000000:0",
        }
    ],
    "stripe__invoice.payment_failed.json": [
        call(
            "Payment Failed",
            anon("cus_00000000000000"),
            order_id="in_000000000000000000000000",
            invoice_id="in_000000000000000000000000",
            total="20.00",
            currency="USD",
            attempt_count=1,
            billing_reason="manual",
        )
    ],
    # No customer or payment intent on these old charges: known by the charge.
    "stripe__charge.refunded.json": [
        call(
            "Order Refunded",
            anon("ch_000000000000000000000000"),
            order_id="ch_000000000000000000000000",
            charge_id="ch_000000000000000000000000",
            total="1.00",
            currency="USD",
        )
    ],
    "stripe__charge.dispute.created.json": [
        call(
            "Order Disputed",
            anon("ch_000000000000000000000000"),
            order_id="ch_000000000000000000000000",
            charge_id="ch_000000000000000000000000",
            dispute_id="dp_000000000000000000000000",
            total="1.00",
            currency="USD",
            reason="fraudulent",
            status="warning_needs_response",
        )
    ],
    "stripe__customer.created.json": [
        {
            "type": "identify",
            "who": anon("cus_00000000000000"),
            "traits": {
                "createdAt": "2022-03-26T18:41:47.000Z",
                "stripe_customer_id": "cus_00000000000000",
            },
        }
    ],
    "stripe__customer.updated.json": [
        {
            "type": "identify",
            "who": anon("cus_00000000000000"),
            "traits": {
                "createdAt": "2022-03-26T18:41:47.000Z",
                "stripe_customer_id": "cus_00000000000000",
            },
        }
    ],
    "stripe__customer.deleted.json": [
        call(
            "Customer Deleted", anon("cus_00000000000000"), stripe_customer_id="cus_00000000000000"
        )
    ],
    "stripe__customer.subscription.created.json": [
        started(subscription_id="sub_000000000000000000000000")
        | call(
            "Subscription Started",
            anon("cus_00000000000000"),
            subscription_id="sub_000000000000000000000000",
            plan="price_000000000000000000000000",
            mrr="15.00",
            currency="USD",
            interval="month",
            status="active",
        )
    ],
    "stripe__customer.subscription.updated.json": [],  # only `schedule` changed
    "stripe__customer.subscription.deleted.json": [
        call(
            "Subscription Cancelled",
            anon("cus_00000000000000"),
            subscription_id="sub_000000000000000000000000",
            plan="price_000000000000000000000000",
            mrr="15.00",
            currency="USD",
            canceled_at="2022-03-26T18:41:37.000Z",
            ended_at="2022-03-26T18:41:37.000Z",
        )
    ],
    # 2013 shape: items carry plans only.
    "stripe__customer.subscription.trial_will_end.json": [
        call(
            "Trial Ending Soon",
            anon("cus_00000000000000"),
            subscription_id="su_00000000000000",
            trial_start_date="2013-10-06T01:05:30.000Z",
            trial_end_date="2013-10-09T01:05:30.000Z",
            trial_plan_name="fkx0AFo_00000000000000",
        )
    ],
    # Repeats of payments counted by other events, or nothing to record: not mapped.
    "stripe__charge.succeeded.json": None,
    "stripe__invoice.payment_succeeded.json": None,
    "stripe__invoice.upcoming.json": None,
    "stripe__payment_intent.payment_failed.json": None,
}


def corpus_files() -> list[Path]:
    found = sorted(CORPUS.glob("*.json")) if CORPUS.is_dir() else []
    found += sorted(PAYLOADS.glob("stripe_*.json")) if PAYLOADS.is_dir() else []
    # The one body without an event envelope (a bare session object) is checked in
    # test_catalogue.py.
    return [p for p in found if "type" in json.loads(p.read_text())]


FILES = corpus_files()


@pytest.fixture(scope="module")
def stripe() -> Mapping:
    return Catalogue.load(ROOT / "mappings", ENV).mappings()["stripe"]


def envelope_of(path: Path) -> tuple[Envelope, dict[str, Any]]:
    body = json.loads(path.read_text())
    return Envelope("stripe", body["id"], body["type"], float(body["created"]), 0.0, body), body


def same(expected: Any, actual: Any) -> bool:
    """Equal, amounts as numbers: an expected amount is written as decimal text."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, str) and isinstance(actual, int | float | Decimal):
        if isinstance(actual, bool):
            return False
        return Decimal(expected) == Decimal(str(actual))
    return type(expected) is type(actual) and expected == actual


def test_the_table_covers_every_payload() -> None:
    if not FILES:
        pytest.skip("../shared/fixtures is absent")
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


@pytest.mark.skipif(not FILES, reason="../shared/fixtures is absent")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_payload_maps_to_the_hand_written_calls(path: Path, stripe: Mapping) -> None:
    envelope, body = envelope_of(path)
    expected = EXPECTED[path.name]
    if expected is None:
        assert not stripe.handles(envelope.type)
        return
    calls = stripe.evaluate(envelope, MemoryIdentityStore())
    assert [c.get("event", c["type"]) for c in calls] == [
        e.get("event", e.get("type")) for e in expected
    ]
    moment = datetime.fromtimestamp(body["created"], UTC)
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    for want, got in zip(expected, calls, strict=True):
        kind = want.get("type", "track")
        key, who = want["who"]
        other = "userId" if key == "anonymousId" else "anonymousId"
        assert (got["type"], got[key], other in got) == (kind, who, False)
        assert got["timestamp"] == timestamp
        message_id = want.get("messageId")
        if message_id is None:
            assert got["messageId"].startswith(f"stripe:{envelope.id}:")
        else:
            assert got["messageId"] == message_id
        context = {"library": {"name": "bridge", "version": __version__}}
        if body.get("livemode") is False:
            context["testMode"] = True  # type: ignore[assignment]
        assert got["context"] == context
        field = "traits" if kind == "identify" else "properties"
        assert same(want[field], got[field]), (got[field], want[field])
        assert set(got) <= {
            "type", "messageId", "timestamp", "userId", "anonymousId", "event", field, "context"
        }  # fmt: skip


# --- across the corpus: one Order Completed per payment; refunds and disputes join it ------

#: By hand: the payments in the corpus whose refunds or disputes it also holds. The
#: developers' fixtures share their ids (pi_000…, ch_000…, in_000…): their session, invoice
#: and payment intent are one payment, refunded and disputed by charge ch_000….
JOINS = {
    "stripe__charge.refunded.json",
    "stripe__charge.dispute.created.json",
}

#: By hand: payloads that are events of one payment (they share a payment's ids: the
#: variants of one real payload, and the developers' fixtures with their zeroed ids),
#: with the number of Order Completed the whole group must make.
PAYMENTS: list[tuple[set[str], int]] = [
    # the 2022 session and its variants (one session, one payment intent)
    (
        {
            "co_payment_paid_userid_2022.json",
            "co_livemode_derived.json",
            "co_async_unpaid_derived.json",
            "co_async_succeeded_derived.json",
            "co_async_failed_derived.json",
            "co_discount_derived.json",
            "co_shipping_derived.json",
            "co_jpy_derived.json",
            "co_kwd_derived.json",
            "co_isk_derived.json",
            "co_subscription_mode_derived.json",
        },
        1,
    ),
    ({"co_payment_paid_anon_2020.json", "co_guest_no_ids_derived.json"}, 1),
    # supabase: a session, its variant without invoice, its invoice (paid with 0, then
    # voided) and its payment intent
    (
        {
            "co_payment_with_invoice_2020.json",
            "co_inclusive_tax_eur_derived.json",
            "inv_paid_zero_amount_2020.json",
            "invoice_voided_2020_unmapped.json",
            "payment_intent_succeeded_2020_unmapped.json",
        },
        1,
    ),
    # nomami's basil invoice: paid (in three currencies) and payment_succeeded
    (
        {
            "inv_paid_basil_subscription_create.json",
            "inv_paid_basil_jpy_derived.json",
            "inv_paid_basil_kwd_derived.json",
            "inv_payment_succeeded_basil_live.json",
        },
        1,
    ),
    (
        {
            "stripe__checkout.session.completed.json",
            "stripe__invoice.paid.json",
            "stripe__invoice.payment_failed.json",
            "stripe__invoice.payment_succeeded.json",
            "stripe__payment_intent.succeeded.json",
            "stripe__payment_intent.payment_failed.json",
            "stripe__charge.succeeded.json",
            "stripe__charge.refunded.json",
            "stripe__charge.dispute.created.json",
        },
        1,
    ),
    # refunds and disputes whose payments the corpus does not hold
    ({"dsp_created_basil.json", "dsp_closed_basil_unmapped.json"}, 0),
    ({"dsp_created_2020.json", "dsp_funds_withdrawn_2020_unmapped.json"}, 0),
    (
        {
            "ref_full_invoice_charge_2020.json",
            "ref_partial_second_derived.json",
            "ref_partial_third_derived.json",
        },
        0,
    ),
    (
        {
            "ref_full_legacy_charge_live.json",
            "ref_partial_jpy_derived.json",
            "ref_partial_kwd_derived.json",
        },
        0,
    ),
]


def payment_ids(body: dict[str, Any]) -> set[str]:
    obj = body["data"]["object"]
    keys = ("payment_intent", "invoice", "charge")
    found = {obj[k] for k in keys if isinstance(obj.get(k), str)}
    kinds = ("checkout.session", "invoice", "payment_intent", "charge")
    if obj.get("object") in kinds and isinstance(obj.get("id"), str):
        found.add(obj["id"])
    return found


def test_the_payments_listed_by_hand_are_the_ones_the_payloads_share() -> None:
    if not FILES:
        pytest.skip("../shared/fixtures is absent")
    bodies = {p.name: json.loads(p.read_text()) for p in FILES}
    groups: list[set[str]] = []
    for name, body in bodies.items():
        ids = payment_ids(body)
        joined = [g for g in groups if any(ids & payment_ids(bodies[n]) for n in g)]
        merged = {name}.union(*joined)
        groups = [g for g in groups if g not in joined] + [merged]
    shared = sorted((g for g in groups if len(g) > 1), key=sorted)
    assert shared == sorted((g for g, _ in PAYMENTS), key=sorted)


@pytest.mark.skipif(not FILES, reason="../shared/fixtures is absent")
def test_the_whole_corpus_counts_each_payment_once_and_joins_its_refunds(
    stripe: Mapping, redis: Redis
) -> None:
    store = IdentityStore(redis)
    bodies = {p.name: envelope_of(p) for p in FILES if EXPECTED[p.name] is not None}
    # Payments come before their refunds; otherwise in the order Stripe created them.
    refund_like = ("charge.refunded", "charge.dispute.")
    ordered = sorted(
        bodies.items(),
        key=lambda i: (i[1][0].type.startswith(refund_like), i[1][1]["created"], i[0]),
    )
    calls = {name: stripe.evaluate(envelope, store) for name, (envelope, _) in ordered}
    for payment, orders in PAYMENTS:
        counted = [
            c
            for name in sorted(payment)
            for c in calls.get(name, [])
            if c.get("event") == "Order Completed"
        ]
        assert len(counted) == orders, sorted(payment)  # its events are one payment
        for name in payment & JOINS:
            (refund,) = calls[name]
            assert refund["properties"]["order_id"] == counted[0]["properties"]["order_id"]
            who = ("userId", "anonymousId")
            assert [refund.get(k) for k in who] == [counted[0].get(k) for k in who]
    # Every other refund or dispute in the corpus has no order in it: nothing to join.
    with_orders = set().union(*(g for g, n in PAYMENTS if n))
    others = {
        name
        for name, cs in calls.items()
        for c in cs
        if c.get("event", "").startswith(("Order Refunded", "Order Disput"))
    }
    assert others & with_orders == JOINS
