"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the raw body>``.

The key is the app's client secret (or, for webhooks made in the store admin, the key
shown under Settings → Notifications → Webhooks). Shopify signs no timestamp and no
event id: the topic travels in ``X-Shopify-Topic``, the event id in
``X-Shopify-Event-Id`` (the same on every delivery of one event; older deliveries only
have ``X-Shopify-Webhook-Id``), the time in ``X-Shopify-Triggered-At`` — all unsigned.
So intake deduplicates on the event id *and* (where intake supports it) on the SHA-256
of the topic and the signed body: the same signed body re-sent under a fresh id is a
duplicate. Revenue is counted by order (messageIds of ``Order Completed`` derive from
it), so a body replayed under another topic cannot double an order either.
See https://shopify.dev/docs/apps/build/webhooks/verify-deliveries.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    b64,
    event,
    header,
    iso_seconds,
    mac,
    match_any,
    require_header,
    unb64,
)

HEADER = "X-Shopify-Hmac-Sha256"
TOPIC = "X-Shopify-Topic"
EVENT_ID = "X-Shopify-Event-Id"
WEBHOOK_ID = "X-Shopify-Webhook-Id"
TRIGGERED_AT = "X-Shopify-Triggered-At"

#: An ``orders/paid`` body (Shopify's sample order, trimmed) whose note attribute
#: carries the app's user id.
_SAMPLE = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "name": "#9999",
    "email": "jon@example.com",
    "currency": "USD",
    "financial_status": "paid",
    "subtotal_price": "398.00",
    "total_price": "413.00",
    "total_tax": "0.00",
    "total_discounts": "5.00",
    "total_shipping_price_set": {
        "shop_money": {"amount": "20.00", "currency_code": "USD"},
        "presentment_money": {"amount": "20.00", "currency_code": "USD"},
    },
    "note_attributes": [{"name": "user_id", "value": "user_42"}],
    "customer": {"id": 115310627314723954, "email": "john@example.com"},
    "discount_codes": [{"code": "SPRING5", "amount": "5.00", "type": "fixed_amount"}],
    "line_items": [
        {
            "id": 866550311766439020,
            "product_id": 632910392,
            "sku": "IPOD2008RED",
            "title": "IPod Nano - 8GB",
            "price": "199.00",
            "quantity": 2,
        }
    ],
}


class ShopifyProvider(ProviderBase):
    """Shopify Admin API webhook subscriptions (HTTPS delivery)."""

    identifier: ClassVar[str] = "shopify"
    dedup_on: ClassVar[str] = (
        "event id (X-Shopify-Event-Id, else X-Shopify-Webhook-Id) and the signed body"
    )
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
        given = unb64(require_header(headers, HEADER), 32, HEADER)
        match_any(secrets, lambda s: mac("sha256", s, body), [given])
        topic = header(headers, TOPIC)
        event_id = header(headers, EVENT_ID) or header(headers, WEBHOOK_ID)
        if not topic or not event_id:
            raise MalformedPayload(f"missing {TOPIC} or {WEBHOOK_ID} header")
        parsed = parse_json_object(body)
        when = iso_seconds(header(headers, TRIGGERED_AT))
        return event(
            id=event_id,
            type=topic,
            time=when if when is not None else now,
            body=parsed,
            raw=body,
            digest_of=(topic.encode(), b"\n", body),
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
            HEADER: b64("sha256", secret, body),
            TOPIC: event_type or "orders/paid",
            EVENT_ID: event_id or str(uuid.uuid4()),
            WEBHOOK_ID: str(uuid.uuid4()),
            TRIGGERED_AT: datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "X-Shopify-Shop-Domain": "shop.myshopify.com",
            "X-Shopify-API-Version": "2024-10",
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "shpss_bridge_dev_secret_0123456789abcdef"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE), event_type="orders/paid")

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """Topic, event id and time come from headers only (the body has none)."""
        return EventFacts(
            header(headers, EVENT_ID) or header(headers, WEBHOOK_ID),
            header(headers, TOPIC),
            iso_seconds(header(headers, TRIGGERED_AT)),
        )
