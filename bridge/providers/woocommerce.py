"""WooCommerce: ``X-WC-Webhook-Signature: <base64 HMAC-SHA256 of the raw body>``.

The key is the webhook's *Secret* (WooCommerce → Settings → Advanced → Webhooks). The
topic (``order.created``) travels in ``X-WC-Webhook-Topic``, unsigned; no timestamp is
signed; ``X-WC-Webhook-Delivery-ID`` names one delivery (a retry may get another). So
bridge derives the event id from the signed body, by order *state*, so that each state
of an order is one event however often it is re-sent:

    <resource>:<id>:paid                          status processing or completed
    <resource>:<id>:<status>                      cancelled, refunded, failed
    <resource>:<id>:<status>:<date_modified_gmt>  anything else

An order that is created paid (``processing``) and later ``completed`` is therefore
counted once. When a webhook is saved WooCommerce pings the delivery URL with an
unsigned ``webhook_id=<n>`` form body and needs a 200 to save it: that ping (and only
that exact shape, without a signature header) is answered 200 ``ping`` and stored
nowhere.
See https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload, WebhookError
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    b64,
    event,
    header,
    iso_seconds,
    mac,
    match_any,
    require_header,
    require_text,
    text_member,
    unb64,
)

HEADER = "X-WC-Webhook-Signature"
TOPIC = "X-WC-Webhook-Topic"
_PING = re.compile(rb"webhook_id=[0-9]{1,20}")
_PAID = frozenset(["processing", "completed"])
_FINAL = frozenset(["cancelled", "refunded", "failed"])


class PingAcknowledged(WebhookError):
    """WooCommerce's unsigned delivery-URL ping: answered 200, nothing stored."""

    status = 200
    reason = "ping"


#: An ``order.created`` of a paid (processing) USD order with the user id in meta_data.
_SAMPLE = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "status": "processing",
    "currency": "USD",
    "date_created_gmt": "2026-11-01T10:00:00",
    "date_modified_gmt": "2026-11-01T10:00:00",
    "date_paid_gmt": "2026-11-01T10:00:00",
    "discount_total": "0.00",
    "shipping_total": "10.00",
    "total": "29.35",
    "total_tax": "1.35",
    "customer_id": 0,
    "billing": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com"},
    "payment_method": "bacs",
    "transaction_id": "",
    "meta_data": [{"id": 1, "key": "user_id", "value": "user_42"}],
    "line_items": [
        {
            "id": 315,
            "name": "Woo Single #1",
            "product_id": 93,
            "quantity": 2,
            "subtotal": "6.00",
            "total": "6.00",
            "price": 3,
            "sku": "",
        },
        {
            "id": 316,
            "name": "Ship Your Idea",
            "product_id": 22,
            "variation_id": 23,
            "quantity": 1,
            "subtotal": "12.00",
            "total": "12.00",
            "price": 12,
            "sku": "",
        },
    ],
    "coupon_lines": [],
    "refunds": [],
}


def derived_id(body: Any, topic: str) -> str:
    """The documented event id (module docstring)."""
    resource = topic.split(".", 1)[0] or "order"
    object_id = require_text(body, "id", provider="WooCommerce")
    status = text_member(body, "status")
    if status in _PAID:
        return f"{resource}:{object_id}:paid"
    if status in _FINAL:
        return f"{resource}:{object_id}:{status}"
    modified = text_member(body, "date_modified_gmt") or text_member(body, "date_modified")
    return f"{resource}:{object_id}:{status or ''}:{modified or ''}"


def _time(body: Any) -> float | None:
    return iso_seconds(text_member(body, "date_modified_gmt")) or iso_seconds(
        text_member(body, "date_created_gmt")
    )


class WooCommerceProvider(ProviderBase):
    """WooCommerce REST API webhooks (API version v3; orders, customers, products)."""

    identifier: ClassVar[str] = "woocommerce"
    dedup_on: ClassVar[str] = "derived id: resource:id:state (signed body; see docs)"
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
        if header(headers, HEADER) is None and _PING.fullmatch(body):
            raise PingAcknowledged("WooCommerce webhook ping acknowledged; nothing stored")
        given = unb64(require_header(headers, HEADER), 32, HEADER)
        match_any(secrets, lambda s: mac("sha256", s, body), [given])
        topic = header(headers, TOPIC)
        if not topic:
            raise MalformedPayload(f"missing {TOPIC} header")
        parsed = parse_json_object(body)
        when = _time(parsed)
        return event(
            id=derived_id(parsed, topic),
            type=topic,
            time=when if when is not None else now,
            body=parsed,
            raw=body,
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
        topic = event_type or "order.created"
        resource, _, action = topic.partition(".")
        return {
            HEADER: b64("sha256", secret, body),
            TOPIC: topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": action,
            "X-WC-Webhook-Source": "https://shop.example.com/",
            "X-WC-Webhook-ID": "1",
            "X-WC-Webhook-Delivery-ID": event_id or uuid.uuid4().hex,
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "bridge-dev-woocommerce-secret"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE), event_type="order.created")

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        topic = header(headers, TOPIC)
        try:
            event_id: str | None = derived_id(body, topic or "order")
        except MalformedPayload:
            event_id = None
        return EventFacts(event_id, topic, _time(body))
