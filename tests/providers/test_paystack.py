"""Paystack: the attack table (HMAC-SHA512), the derived event id, and the real payloads
through intake and the shipped mapping."""

from __future__ import annotations

import uuid

import orjson
import pytest
from redis import Redis

from bridge.providers.paystack import PaystackProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS, payload_files
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import PAYSTACK_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "event": "charge.success",
            "data": {
                "id": uuid.uuid4().int % 10**10,
                "status": "success",
                "domain": "live",
                "reference": uuid.uuid4().hex[:10],
                "amount": 10000,
                "currency": "NGN",
                "paid_at": "2026-11-01T10:00:00.000Z",
                "metadata": {"user_id": "user_42"},
                "customer": {"customer_code": "CUS_1"},
            },
        }
    )


class TestPaystackAttacks(AttackTable):
    case = Case(
        source="paystack",
        env_var="PAYSTACK_WEBHOOK_SECRET",
        secret=PAYSTACK_SECRET,
        next_secret="sk_test_rotated0123456789abcdef",
        make_body=make_body,
        sign=lambda body, secret, ts: signing.paystack(body, secret),
        signature_header="x-paystack-signature",
    )


def test_a_sha256_signature_is_malformed_not_a_match() -> None:
    body = make_body()
    import hashlib
    import hmac

    sha256 = hmac.new(PAYSTACK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    from bridge.errors import SignatureError

    with pytest.raises(SignatureError) as info:
        PaystackProvider().verify(
            body, {"x-paystack-signature": sha256}, [PAYSTACK_SECRET], tolerance=0, now=0
        )
    assert info.value.reason == "malformed_signature"


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")
REAL = payload_files("paystack")

#: file -> the derived event id, by hand from the body.
IDS = {
    "paystack__charge.success.json": "charge.success:302961",
    "paystack__refund.processed.json": "refund.processed:132013318360",
    "paystack__subscription.create.json": "subscription.create:SUB_vsyqdmlzble3uii",
    "paystack__subscription.disable.json": "subscription.disable:SUB_vsyqdmlzble3uii",
    "paystack__subscription.not_renew.json": "subscription.not_renew:317617",
    "paystack__invoice.update.json": "invoice.update:INV_kmhuaaur5c9ruh2:success",
}


def _deliver(name: str, redis_url: str, redis: Redis) -> list[dict[str, object]]:
    body = (PAYLOADS / name).read_bytes()
    stored, calls = deliver(
        app_for(redis_url), body, signing.paystack(body, PAYSTACK_SECRET), "paystack", redis
    )
    if calls:
        assert stored.id == IDS[name]
    return calls


@present
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_payload_is_accepted_when_signed(path, redis_url: str, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    body = path.read_bytes()
    event = PaystackProvider().verify(
        body, signing.paystack(body, PAYSTACK_SECRET), [PAYSTACK_SECRET], tolerance=0, now=0
    )
    assert event.id == IDS[path.name]
    _deliver(path.name, redis_url, redis)


@present
def test_real_charge_success_numbers(redis_url: str, redis: Redis) -> None:
    order, identify = _deliver("paystack__charge.success.json", redis_url, redis)
    assert order["event"] == "Order Completed"
    assert order["messageId"] == "paystack:qTPrJoy9Bx:0"  # once: data.reference
    assert order["timestamp"] == "2016-09-30T21:10:19.000Z"  # paid_at
    assert order["anonymousId"] == "paystack:CUS_qo38as2hpsgk2r0"  # metadata is 0
    # amount 10000 kobo = NGN 100.00
    assert order["properties"] == {
        "order_id": "qTPrJoy9Bx",
        "transaction_id": "302961",
        "total": 100,
        "revenue": 100,
        "currency": "NGN",
        "payment_method": "card",
    }
    assert identify["traits"]["email"] == "bojack@horseman.com"  # type: ignore[index]


@present
def test_real_refund_carries_the_transaction_reference(redis_url: str, redis: Redis) -> None:
    [refund] = _deliver("paystack__refund.processed.json", redis_url, redis)
    assert refund["event"] == "Order Refunded"
    # amount "5000" (text) kobo = NGN 50.00
    assert refund["properties"] == {
        "order_id": "T2154954_412829_3be32076_6lcg3",
        "refund_id": "132013318360",
        "total": 50,
        "currency": "NGN",
    }


@present
def test_real_subscription_lifecycle(redis_url: str, redis: Redis) -> None:
    [started] = _deliver("paystack__subscription.create.json", redis_url, redis)
    assert started["event"] == "Subscription Started"
    assert started["properties"]["amount"] == 500  # type: ignore[index]  # 50000 kobo
    assert started["context"]["testMode"] is True  # type: ignore[index]  # domain test
    [ended] = _deliver("paystack__subscription.disable.json", redis_url, redis)
    assert ended["event"] == "Subscription Cancelled"
    [scheduled] = _deliver("paystack__subscription.not_renew.json", redis_url, redis)
    assert scheduled["event"] == "Subscription Cancellation Scheduled"
    # The paid invoice repeats a charge.success: no second revenue.
    assert _deliver("paystack__invoice.update.json", redis_url, redis) == []
