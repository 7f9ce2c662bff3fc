"""Lemon Squeezy: ``X-Signature: <hex HMAC-SHA256 of the raw body>``.

The key is the webhook's signing secret (6-40 characters, set when the webhook is
created). No timestamp is signed and Lemon Squeezy sends no event id, so bridge derives
a stable one from the signed body (documented, so it is the same on every retry):

    <meta.event_name>:<data.type>:<data.id>:<data.attributes.updated_at>

— ``order_created:orders:1:2023-01-17T12:26:23.000000Z``. A retry re-sends the same
body, hence the same id (a duplicate); an order is created once, so its
``Order Completed`` is counted once. The event name is the signed ``meta.event_name``;
the ``X-Event-Name`` header, when present, must agree with it.
See https://docs.lemonsqueezy.com/help/webhooks/signing-requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload
from bridge.providers.base import EventFacts, ProviderBase, Sample, VerifiedEvent, parse_json_object
from bridge.providers.hmac_scheme import (
    event,
    header,
    hexdigest,
    iso_seconds,
    mac,
    match_any,
    require_header,
    require_text,
    text_member,
    unhex,
)

HEADER = "X-Signature"
EVENT_NAME = "X-Event-Name"

#: An ``order_created`` for a $58.99 order, with the app's user id in ``custom_data``.
_SAMPLE = {
    "meta": {"event_name": "order_created", "custom_data": {"user_id": "user_42"}},
    "data": {
        "type": "orders",
        "id": "1",
        "attributes": {
            "store_id": 1,
            "customer_id": 1,
            "identifier": "89b36d62-4f5c-4353-853f-0c769d0535c8",
            "order_number": 1,
            "user_name": "Ada Lovelace",
            "user_email": "ada@example.com",
            "currency": "USD",
            "subtotal": 5899,
            "discount_total": 0,
            "tax": 0,
            "total": 5899,
            "status": "paid",
            "first_order_item": {
                "product_id": 1,
                "variant_id": 1,
                "product_name": "Product One",
                "variant_name": "Default",
                "price": 5899,
            },
            "created_at": "2026-11-01T10:00:00.000000Z",
            "updated_at": "2026-11-01T10:00:00.000000Z",
            "test_mode": True,
        },
    },
}


def derived_id(body: Any) -> str:
    """The documented event id: ``event_name:data.type:data.id:updated_at``."""
    name = require_text(body, "meta", "event_name", provider="Lemon Squeezy")
    kind = require_text(body, "data", "type", provider="Lemon Squeezy")
    object_id = require_text(body, "data", "id", provider="Lemon Squeezy")
    stamp = text_member(body, "data", "attributes", "updated_at") or text_member(
        body, "data", "attributes", "created_at"
    )
    return ":".join([name, kind, object_id, stamp or ""])


class LemonSqueezyProvider(ProviderBase):
    """Lemon Squeezy store webhooks (orders, subscriptions, invoices, license keys)."""

    identifier: ClassVar[str] = "lemonsqueezy"
    dedup_on: ClassVar[str] = "derived id: event_name:data.type:data.id:updated_at (signed body)"
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
        given = unhex(require_header(headers, HEADER), 32, HEADER)
        match_any(secrets, lambda s: mac("sha256", s, body), [given])
        parsed = parse_json_object(body)
        name = require_text(parsed, "meta", "event_name", provider="Lemon Squeezy")
        announced = header(headers, EVENT_NAME)
        if announced is not None and announced != name:
            raise MalformedPayload(
                f"{EVENT_NAME} header says {announced!r} but the signed body says {name!r}"
            )
        when = iso_seconds(text_member(parsed, "data", "attributes", "updated_at"))
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
        name = event_type
        if name is None:
            name = text_member(parse_json_object(body), "meta", "event_name") or "order_created"
        return {
            HEADER: hexdigest("sha256", secret, body),
            EVENT_NAME: name,
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "bridge-dev-lemonsqueezy"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """Type ``meta.event_name``; the derived id; time ``data.attributes.updated_at``."""
        try:
            event_id: str | None = derived_id(body)
        except MalformedPayload:
            event_id = None
        when = iso_seconds(text_member(body, "data", "attributes", "updated_at"))
        return EventFacts(event_id, text_member(body, "meta", "event_name"), when)
