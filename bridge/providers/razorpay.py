"""Razorpay: ``X-Razorpay-Signature: <hex HMAC-SHA256 of the raw body>``.

The key is the webhook secret set in the Dashboard (Accounts & Settings → Webhooks).
No timestamp is signed. Dedup on the ``X-Razorpay-Event-Id`` header, unique per event
and kept on retries — but unsigned, so intake also deduplicates (where it supports it)
on the SHA-256 of the signed body: a captured body re-sent under a fresh id is a
duplicate. Retries of events from before a secret change are signed with the old
secret: keep both in ``RAZORPAY_WEBHOOK_SECRET`` (comma-separated) for a while.
See https://razorpay.com/docs/webhooks/validate-test/.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    event,
    header,
    hexdigest,
    mac,
    match_any,
    require_header,
    require_text,
    text_member,
    unhex,
)

HEADER = "X-Razorpay-Signature"
EVENT_ID = "X-Razorpay-Event-Id"

#: A ``payment.captured`` of INR 500.00 (50000 paise) with the app's user id in notes.
_SAMPLE = {
    "entity": "event",
    "account_id": "acc_BFQ7uQEaa7j2z7",
    "event": "payment.captured",
    "contains": ["payment"],
    "payload": {
        "payment": {
            "entity": {
                "id": "pay_DESlfW9H8K9uqM",
                "entity": "payment",
                "amount": 50000,
                "currency": "INR",
                "status": "captured",
                "order_id": "order_DESlLckIVRkHWj",
                "method": "card",
                "captured": True,
                "email": "gaurav.kumar@example.com",
                "contact": "+919876543210",
                "customer_id": "cust_DESlCS8Q9p0xoM",
                "notes": {"user_id": "user_42"},
                "fee": 1180,
                "tax": 180,
                "created_at": 1793527200,
            }
        }
    },
    "created_at": 1793527201,
}


def _created(body: Any) -> float | None:
    created = body.get("created_at") if isinstance(body, dict) else None
    if isinstance(created, int) and not isinstance(created, bool):
        return float(created)
    return None


class RazorpayProvider(ProviderBase):
    """Razorpay payment, order, refund and subscription webhooks."""

    identifier: ClassVar[str] = "razorpay"
    dedup_on: ClassVar[str] = "event id (X-Razorpay-Event-Id header) and the signed body"
    signs_event_id: ClassVar[bool] = False

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
        given = unhex(require_header(headers, HEADER), 32, HEADER)
        match_any(secrets, lambda s: mac("sha256", s, body), [given])
        event_id = header(headers, EVENT_ID)
        if not event_id:
            raise MalformedPayload(f"missing {EVENT_ID} header")
        parsed = parse_json_object(body)
        name = require_text(parsed, "event", provider="Razorpay")
        created = _created(parsed)
        return event(
            id=event_id,
            type=name,
            time=created if created is not None else now,
            body=parsed,
            raw=body,
            digest_of=(body,),
        )

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
        return {
            HEADER: hexdigest("sha256", secret, body),
            EVENT_ID: event_id or uuid.uuid4().hex[:14],
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "bridge-dev-razorpay-secret"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        return EventFacts(header(headers, EVENT_ID), text_member(body, "event"), _created(body))
