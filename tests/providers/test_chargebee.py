"""Chargebee: Basic auth only (no signature): the attack table says what that guarantees."""

from __future__ import annotations

import uuid

import orjson
import pytest

from bridge.errors import SignatureError
from bridge.providers.chargebee import ChargebeeProvider
from tests import revenue_signing as signing
from tests.providers.attacks import AttackTable, Case
from tests.revenue_secrets import CHARGEBEE_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "id": f"ev_{uuid.uuid4().hex[:16]}",
            "occurred_at": 1793527200,
            "object": "event",
            "event_type": "payment_succeeded",
            "content": {
                "transaction": {"id": "txn_1", "amount": 2900, "currency_code": "USD"},
                "invoice": {"id": "42", "total": 2900, "tax": 0, "currency_code": "USD"},
                "customer": {"id": "cus_1", "cf_user_id": "user_42"},
            },
        }
    )


class TestChargebeeAttacks(AttackTable):
    case = Case(
        source="chargebee",
        env_var="CHARGEBEE_WEBHOOK_SECRET",
        secret=CHARGEBEE_SECRET,
        next_secret="bridge:rotated-password",
        make_body=make_body,
        sign=lambda body, secret, ts: signing.chargebee(secret),
        signature_header="Authorization",
        signs_body=False,
        malformed=("garbage", "Bearer abc", "Basic !!!", "Basic dXNlcg=="),  # last: "user"
    )


def test_a_wrong_user_with_the_right_password_is_refused() -> None:
    password = CHARGEBEE_SECRET.split(":", 1)[1]
    with pytest.raises(SignatureError) as info:
        ChargebeeProvider().verify(
            make_body(),
            signing.chargebee(f"someone:{password}"),
            [CHARGEBEE_SECRET],
            tolerance=0,
            now=0,
        )
    assert info.value.reason == "bad_signature"


def test_verified_event_fields() -> None:
    body = make_body()
    event = ChargebeeProvider().verify(
        body, signing.chargebee(CHARGEBEE_SECRET), [CHARGEBEE_SECRET], tolerance=0, now=0
    )
    assert (event.id, event.type, event.time) == (
        orjson.loads(body)["id"],
        "payment_succeeded",
        1793527200.0,
    )
