"""Polar: Standard Webhooks keyed with the secret text's own bytes; the attack table."""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from bridge.errors import SignatureError
from bridge.providers.polar import PolarProvider
from tests import revenue_signing as signing
from tests.providers.attacks import AttackTable, Case
from tests.revenue_secrets import POLAR_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "type": "order.paid",
            "timestamp": "2026-11-01T10:00:00Z",
            "data": {
                "id": str(uuid.uuid4()),
                "total_amount": 2400,
                "net_amount": 2000,
                "tax_amount": 400,
                "discount_amount": 0,
                "subtotal_amount": 2000,
                "currency": "usd",
                "customer_id": "cus_1",
                "customer": {"id": "cus_1", "external_id": "user_42"},
            },
        }
    )


_IDS: dict[bytes, str] = {}


def sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
    return signing.polar(body, secret, _IDS.setdefault(body, f"msg_{uuid.uuid4().hex}"), ts)


class TestPolarAttacks(AttackTable):
    case = Case(
        source="polar",
        env_var="POLAR_WEBHOOK_SECRET",
        secret=POLAR_SECRET,
        next_secret="polar_whs_rotatedSecret",
        make_body=make_body,
        sign=sign,
        signature_header="webhook-signature",
        timestamped=True,
    )


def test_keying_with_the_base64_decoded_secret_is_not_accepted() -> None:
    # A plain Standard Webhooks verifier would base64-decode the secret; Polar does not.
    body = make_body()
    decoded = base64.b64decode(POLAR_SECRET.removeprefix("polar_whs_") + "==")
    headers = signing.polar(body, decoded.decode("latin-1"), "msg_1", 1_700_000_000)
    with pytest.raises(SignatureError):
        PolarProvider().verify(body, headers, [POLAR_SECRET], tolerance=300, now=1_700_000_000)
    good = signing.polar(body, POLAR_SECRET, "msg_1", 1_700_000_000)
    event = PolarProvider().verify(body, good, [POLAR_SECRET], tolerance=300, now=1_700_000_000)
    assert (event.id, event.type, event.time) == ("msg_1", "order.paid", 1_700_000_000.0)
