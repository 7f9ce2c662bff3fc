"""Paystack: ``x-paystack-signature: <hex HMAC-SHA512 of the raw body>``.

The key is the integration's *secret API key* (``sk_live_…`` / ``sk_test_…``): Paystack
has no separate webhook secret. Paystack signs no timestamp and sends no event id, so
bridge derives one from the signed body, the same on every retry:

    <event>:<data.id | data.reference | data.refund_reference | data.subscription_code
             | data.invoice_code>[:<data.status>]

(the status only for ``invoice.*``, whose invoice is updated more than once). A charge
is one transaction id, so its ``Order Completed`` is counted once. Paystack's own
snippet hashes a re-serialised ``JSON.stringify(body)``; bridge verifies the raw bytes.
See https://paystack.com/docs/payments/webhooks/.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    event,
    hexdigest,
    iso_seconds,
    mac,
    match_any,
    require_header,
    require_text,
    text_member,
    unhex,
)

HEADER = "x-paystack-signature"
_KEYS = ("id", "reference", "refund_reference", "subscription_code", "invoice_code")

#: A ``charge.success`` of NGN 100.00 (10000 kobo) with the app's user id in metadata.
_SAMPLE = {
    "event": "charge.success",
    "data": {
        "id": 4099260516,
        "domain": "test",
        "status": "success",
        "reference": "re4lyvq3s3",
        "amount": 10000,
        "paid_at": "2026-11-01T10:00:00.000Z",
        "created_at": "2026-11-01T09:59:40.000Z",
        "channel": "card",
        "currency": "NGN",
        "metadata": {"user_id": "user_42"},
        "fees": 150,
        "customer": {
            "id": 181873746,
            "email": "ada@example.com",
            "customer_code": "CUS_1rkzaqsv4rrhqo6",
            "first_name": "Ada",
            "last_name": "Lovelace",
        },
        "plan": {},
    },
}


def derived_id(body: Any) -> str:
    """The documented event id (module docstring)."""
    name = require_text(body, "event", provider="Paystack")
    key = next((v for k in _KEYS if (v := text_member(body, "data", k))), None)
    if key is None:
        raise MalformedPayload("Paystack payload has no data.id, reference or code")
    if name.startswith("invoice."):
        return f"{name}:{key}:{text_member(body, 'data', 'status') or ''}"
    return f"{name}:{key}"


def _time(body: Any) -> float | None:
    for key in ("paid_at", "paidAt", "updatedAt", "updated_at", "createdAt", "created_at"):
        when = iso_seconds(text_member(body, "data", key))
        if when is not None:
            return when
    return None


class PaystackProvider(ProviderBase):
    """Paystack transaction, refund, subscription and invoice events."""

    identifier: ClassVar[str] = "paystack"
    dedup_on: ClassVar[str] = "derived id: event:data.id|reference|code (signed body)"
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
        given = unhex(require_header(headers, HEADER), 64, HEADER)
        match_any(secrets, lambda s: mac("sha512", s, body), [given])
        parsed = parse_json_object(body)
        name = require_text(parsed, "event", provider="Paystack")
        when = _time(parsed)
        return event(
            id=derived_id(parsed), type=name, time=when if when else now, body=parsed, raw=body
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
        return {HEADER: hexdigest("sha512", secret, body), "Content-Type": "application/json"}

    def dev_secret(self) -> str:
        return "sk_test_bridgedev0123456789abcdef0123456789"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        try:
            event_id: str | None = derived_id(body)
        except MalformedPayload:
            event_id = None
        return EventFacts(event_id, text_member(body, "event"), _time(body))
