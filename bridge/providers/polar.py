"""Polar: Standard Webhooks, keyed with the secret's own UTF-8 bytes.

Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds, signed, checked against the
tolerance) and ``webhook-signature: v1,<base64>``; the signature is HMAC-SHA256 over
``id.timestamp.body``. The quirk: a Polar secret (``polar_whs_…``) is not
``whsec_<base64>``; polar-python's ``validate_event`` base64-encodes the secret's text
before handing it to the ``standardwebhooks`` library, i.e. the HMAC key is the secret
string's UTF-8 bytes. bridge does the same and reuses the Standard Webhooks verifier.
Dedup on ``webhook-id`` (signed). Body ``{type, timestamp, data}``.
See https://docs.polar.sh/integrate/webhooks/delivery.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import ClassVar

import orjson

from bridge.providers.base import Sample, VerifiedEvent
from bridge.providers.standard_webhooks import StandardWebhooksProvider


def as_standard(secret: str) -> str:
    """Polar's secret text as the ``whsec_<base64>`` that Standard Webhooks decodes."""
    return "whsec_" + base64.b64encode(secret.strip().encode("utf-8")).decode("ascii")


_SAMPLE = {
    "type": "order.paid",
    "timestamp": "2026-11-01T10:00:00.000000Z",
    "data": {
        "id": "5b1b5a6d-6b58-4d0d-9f4a-0f3e1f1c2a01",
        "created_at": "2026-11-01T10:00:00.000000Z",
        "status": "paid",
        "paid": True,
        "billing_reason": "purchase",
        "subtotal_amount": 2000,
        "discount_amount": 0,
        "net_amount": 2000,
        "tax_amount": 400,
        "total_amount": 2400,
        "refunded_amount": 0,
        "currency": "usd",
        "customer_id": "0e4f4f2e-3c1a-4d1c-9b5e-2a7d5c0b9e11",
        "product_id": "7c2b8f0e-8f7d-4b8e-9a7c-1b2c3d4e5f60",
        "subscription_id": None,
        "customer": {
            "id": "0e4f4f2e-3c1a-4d1c-9b5e-2a7d5c0b9e11",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "external_id": "user_42",
        },
        "product": {"id": "7c2b8f0e-8f7d-4b8e-9a7c-1b2c3d4e5f60", "name": "Pro"},
        "metadata": {},
    },
}


class PolarProvider(StandardWebhooksProvider):
    """Polar (polar.sh) webhooks: orders, subscriptions, refunds, customers."""

    identifier: ClassVar[str] = "polar"
    dedup_on: ClassVar[str] = "message id (webhook-id header, signed)"
    signs_event_id: ClassVar[bool] = True

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        tolerance: int,
        now: float,
        url: str = "",
    ) -> VerifiedEvent:
        keys = [as_standard(s) for s in secrets if s.strip()]
        return super().verify(body, headers, keys, tolerance=tolerance, now=now, url=url)

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        event_id: str | None = None,
        event_type: str | None = None,
        url: str = "",
    ) -> dict[str, str]:
        return super().sign(
            body, as_standard(secret), now=now, event_id=event_id, event_type=event_type, url=url
        )

    def dev_secret(self) -> str:
        return "polar_whs_bridgeDevSecret0123456789abcdef"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))
