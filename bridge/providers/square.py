"""Square: ``x-square-hmacsha256-signature: <base64 HMAC-SHA256 of url + body>``.

The key is the webhook subscription's *signature key* (Developer Console → Webhooks →
Subscriptions), used as its UTF-8 text; the message is the notification URL exactly as
configured in Square followed by the raw body. So the source needs
``SQUARE_WEBHOOK_URL`` (the mapping's ``options.public_url``): behind a proxy the URL
bridge sees is not the one Square signed. No timestamp is signed. The legacy SHA-1
``x-square-signature`` is not accepted.

Dedup: on the body's ``event_id`` (signed), except for payments and refunds, which
Square reports again on every change (a completed payment gets more ``payment.updated``
events when its processing fee or refunded amount is set): those are deduplicated by
*state*, ``payment:<id>:<status>`` / ``refund:<id>:<status>`` (from the signed body), so
a payment is COMPLETED once and its revenue is counted once.
See https://developer.squareup.com/docs/webhooks/step3validate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    b64,
    event,
    iso_seconds,
    mac,
    match_any,
    require_header,
    require_text,
    text_member,
    unb64,
)

HEADER = "x-square-hmacsha256-signature"

#: A ``payment.updated`` of a completed USD 10.00 payment (Square's documented example).
_SAMPLE = {
    "merchant_id": "6SSW7HV8K2ST5",
    "type": "payment.updated",
    "event_id": "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc",
    "created_at": "2026-11-01T10:00:00.000Z",
    "data": {
        "type": "payment",
        "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
        "object": {
            "payment": {
                "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
                "amount_money": {"amount": 1000, "currency": "USD"},
                "total_money": {"amount": 1000, "currency": "USD"},
                "status": "COMPLETED",
                "source_type": "CARD",
                "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
                "customer_id": "DF2GCC1WBXY1B7KZHKS1W5EZ9R",
                "location_id": "S8GWD5R9QB376",
                "created_at": "2026-11-01T09:59:58.000Z",
                "updated_at": "2026-11-01T10:00:00.000Z",
            }
        },
    },
}


def state_id(body: Any) -> str | None:
    """``payment:<id>:<status>`` / ``refund:<id>:<status>`` for payment and refund events."""
    kind = text_member(body, "data", "type")
    if kind not in ("payment", "refund"):
        return None
    object_id = text_member(body, "data", "object", kind, "id") or text_member(body, "data", "id")
    status = text_member(body, "data", "object", kind, "status")
    if not object_id or not status:
        return None
    return f"{kind}:{object_id}:{status}"


class SquareProvider(ProviderBase):
    """Square webhook subscriptions (payments, refunds, orders, customers, subscriptions)."""

    identifier: ClassVar[str] = "square"
    dedup_on: ClassVar[str] = (
        "event id (body `event_id`, signed); payments and refunds by id and status"
    )
    signs_url: ClassVar[bool] = True
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
        given = unb64(require_header(headers, HEADER), 32, HEADER)
        host = urlsplit(url).hostname or ""
        if not url or host.endswith(".invalid"):
            # The shipped mapping's placeholder: refuse rather than guess the URL.
            raise SignatureError(
                "Square signs the notification URL: set SQUARE_WEBHOOK_URL "
                "(options.public_url) to the URL configured in Square",
                reason="unverifiable",
            )
        signed = url.encode("utf-8") + body
        match_any(secrets, lambda s: mac("sha256", s, signed), [given])
        parsed = parse_json_object(body)
        event_id = state_id(parsed) or require_text(parsed, "event_id", provider="Square")
        name = require_text(parsed, "type", provider="Square")
        when = iso_seconds(parsed.get("created_at"))
        if when is None:
            raise MalformedPayload("Square payload has no ISO-8601 created_at")
        return event(id=event_id, type=name, time=when, body=parsed, raw=body)

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
            HEADER: b64("sha256", secret, url.encode("utf-8") + body),
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "bridge-dev-square-signature-key"

    def dev_variables(self, source: str, web_url: str) -> dict[str, str]:
        """For ``bridge dev``: the notification URL is the local web app's."""
        variable = source.upper().replace("-", "_") + "_WEBHOOK_URL"
        return {variable: f"{web_url}/webhooks/{source}"}

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        return EventFacts(
            state_id(body) or text_member(body, "event_id"),
            text_member(body, "type"),
            iso_seconds(text_member(body, "created_at")),
        )

    def renew(self, body: bytes) -> bytes:
        parsed = parse_json_object(body)
        parsed["event_id"] = str(uuid.uuid4())
        return orjson.dumps(parsed)
