"""Chargebee: no signature — HTTP Basic auth only (``CHARGEBEE_WEBHOOK_SECRET=user:password``).

Chargebee signs nothing: the webhook is protected by the username and password set on
it (Settings → Configure Chargebee → Webhooks → "Protect webhook URL with basic
authentication"), sent in ``Authorization: Basic …``. bridge compares the whole
``user:password`` in constant time against each configured pair (rotation: several,
comma-separated). The guarantee is weaker than a signature: anyone who learns the
credentials can post any body, and nothing ties a body to Chargebee — keep the URL on
HTTPS and the password long. There is no timestamp; dedup on the body's event ``id``
(``ev_…``) and, where intake supports it, on the body's SHA-256. Deliveries may arrive
twice and out of order; Chargebee retries for up to 3 days.
See https://www.chargebee.com/docs/2.0/webhook_settings.html.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    event,
    require_header,
    require_text,
    text_member,
)

HEADER = "Authorization"

#: A ``payment_succeeded`` for a USD 29.00 invoice, the app's user id in cf_user_id.
_SAMPLE = {
    "id": "ev_16BPgETyVrQbiGhA",
    "occurred_at": 1793527200,
    "source": "scheduled_job",
    "object": "event",
    "api_version": "v2",
    "event_type": "payment_succeeded",
    "content": {
        "transaction": {
            "id": "txn_16BPgETyVrQbiGhB",
            "customer_id": "16BPgETyVrQbhXA1",
            "subscription_id": "16BPgETyVrQbhXA1",
            "type": "payment",
            "status": "success",
            "amount": 2900,
            "currency_code": "USD",
            "object": "transaction",
        },
        "invoice": {
            "id": "42",
            "customer_id": "16BPgETyVrQbhXA1",
            "subscription_id": "16BPgETyVrQbhXA1",
            "status": "paid",
            "total": 2900,
            "sub_total": 2900,
            "tax": 0,
            "amount_paid": 2900,
            "currency_code": "USD",
            "object": "invoice",
        },
        "customer": {
            "id": "16BPgETyVrQbhXA1",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "cf_user_id": "user_42",
            "object": "customer",
        },
    },
}


def _credentials(value: str) -> bytes:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise SignatureError(
            "malformed Authorization header: expected Basic <base64 user:password>",
            reason="malformed_signature",
        )
    try:
        raw = base64.b64decode(token.strip().encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise SignatureError(
            "malformed Authorization header: not base64", reason="malformed_signature"
        ) from None
    if b":" not in raw:
        raise SignatureError(
            "malformed Authorization header: expected user:password", reason="malformed_signature"
        )
    return raw


def _occurred(body: Any) -> float | None:
    value = body.get("occurred_at") if isinstance(body, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return None


class ChargebeeProvider(ProviderBase):
    """Chargebee webhooks (API v2 events), authenticated by HTTP Basic auth."""

    identifier: ClassVar[str] = "chargebee"
    dedup_on: ClassVar[str] = "event id (body `id`, ev_...) and the body (Basic auth, unsigned)"
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
        given = _credentials(require_header(headers, HEADER))
        usable = [s.strip() for s in secrets if s.strip()]
        if not usable:
            raise SignatureError("no secret configured for this source", reason="no_secret")
        matched = False
        for pair in usable:
            matched |= hmac.compare_digest(pair.encode("utf-8"), given)
        if not matched:
            raise SignatureError("credentials match none of the source's user:password pairs")
        parsed = parse_json_object(body)
        event_id = require_text(parsed, "id", provider="Chargebee")
        name = require_text(parsed, "event_type", provider="Chargebee")
        occurred = _occurred(parsed)
        if occurred is None:
            raise MalformedPayload("Chargebee payload has no integer occurred_at")
        return event(
            id=event_id,
            type=name,
            time=occurred,
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
        token = base64.b64encode(secret.encode("utf-8")).decode("ascii")
        return {HEADER: f"Basic {token}", "Content-Type": "application/json"}

    def dev_secret(self) -> str:
        return "bridge:bridge-dev-chargebee-password"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        return EventFacts(text_member(body, "id"), text_member(body, "event_type"), _occurred(body))

    def renew(self, body: bytes) -> bytes:
        parsed = parse_json_object(body)
        parsed["id"] = f"ev_{uuid.uuid4().hex[:16]}"
        return orjson.dumps(parsed)
