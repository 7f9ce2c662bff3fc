"""Paddle Billing: ``Paddle-Signature: ts=<unix s>;h1=<hex>[;h1=<hex>…]``.

``h1`` is the hex HMAC-SHA256, keyed with the notification destination's secret key
(``pdl_ntfset_…``), of ``ts + ":" + raw body``; several ``h1`` may be present while a
secret rotates. ``ts`` is signed, so it is checked against the source's tolerance (the
official SDKs default to 5 s; bridge's default is the mapping's ``tolerance``, 300 s).
Dedup on the body's ``event_id`` (``evt_…``, signed); ``notification_id`` names one
delivery. The only Paddle SDK is a full API client, so the documented scheme is
implemented here (a dozen lines).
See https://developer.paddle.com/webhooks/signature-verification.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import (
    EventFacts,
    ProviderBase,
    Sample,
    VerifiedEvent,
    check_tolerance,
    parse_json_object,
)
from bridge.providers.hmac_scheme import (
    event,
    hexdigest,
    iso_seconds,
    mac,
    match_any,
    require_header,
    require_text,
    unhex,
)

HEADER = "Paddle-Signature"
_TS = re.compile(r"[0-9]{1,11}")

#: A ``transaction.completed`` of a 2-seat monthly plan with the app's user id in
#: ``custom_data`` (shape of Paddle's simulator deliveries).
_SAMPLE = {
    "event_id": "evt_01hv8wptq8987qeep44cyrewp9",
    "event_type": "transaction.completed",
    "occurred_at": "2026-11-01T10:00:00.000000Z",
    "notification_id": "ntf_01hv8wptsnx8cayk55wz9d2t2f",
    "data": {
        "id": "txn_01hv8wnbqa6mrvmm6b4wj6v3s0",
        "status": "completed",
        "origin": "web",
        "customer_id": "ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
        "subscription_id": "sub_01hv8x29kz0t586xy6zn1a62ny",
        "invoice_number": "325-10566",
        "currency_code": "USD",
        "custom_data": {"user_id": "user_42"},
        "details": {
            "totals": {
                "subtotal": "6000",
                "discount": "0",
                "tax": "532",
                "total": "6532",
                "grand_total": "6532",
                "currency_code": "USD",
            }
        },
        "items": [
            {
                "price": {
                    "id": "pri_01gsz8x8sawmvhz1pv30nge1ke",
                    "name": "Monthly (per seat)",
                    "unit_price": {"amount": "3000", "currency_code": "USD"},
                    "billing_cycle": {"interval": "month", "frequency": 1},
                },
                "quantity": 2,
            }
        ],
    },
}


def _parse(value: str) -> tuple[str, list[bytes]]:
    """``(ts, [h1 signatures])`` of a Paddle-Signature header."""
    stamp: str | None = None
    signatures: list[bytes] = []
    for item in value.split(";"):
        key, sep, part = item.strip().partition("=")
        if not sep:
            continue
        if key == "ts":
            if stamp is not None or not _TS.fullmatch(part):
                raise SignatureError(
                    f"malformed {HEADER} header: expected one ts=<unix seconds>",
                    reason="malformed_signature",
                )
            stamp = part
        elif key == "h1":
            signatures.append(unhex(part, 32, HEADER))
    if stamp is None or not signatures:
        raise SignatureError(
            f"malformed {HEADER} header: expected ts=<unix seconds>;h1=<hex>",
            reason="malformed_signature",
        )
    return stamp, signatures


class PaddleProvider(ProviderBase):
    """Paddle Billing notifications (not Paddle Classic's ``p_signature`` alerts)."""

    identifier: ClassVar[str] = "paddle"
    dedup_on: ClassVar[str] = "event id (body `event_id`, evt_..., signed)"
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
        stamp, signatures = _parse(require_header(headers, HEADER))
        signed = stamp.encode() + b":" + body
        match_any(secrets, lambda s: mac("sha256", s, signed), signatures)
        check_tolerance(int(stamp), tolerance=tolerance, now=now)
        parsed = parse_json_object(body)
        event_id = require_text(parsed, "event_id", provider="Paddle")
        event_type = require_text(parsed, "event_type", provider="Paddle")
        occurred = iso_seconds(parsed.get("occurred_at"))
        if occurred is None:
            raise MalformedPayload("Paddle payload has no ISO-8601 occurred_at")
        return event(id=event_id, type=event_type, time=occurred, body=parsed, raw=body)

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
        stamp = str(int(now))
        signature = hexdigest("sha256", secret, stamp.encode() + b":" + body)
        return {HEADER: f"ts={stamp};h1={signature}", "Content-Type": "application/json"}

    def dev_secret(self) -> str:
        return "pdl_ntfset_01bridgedevsecret_bridgeDevSecretKey0123456789"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """``event_id``, ``event_type`` and ``occurred_at`` of the notification."""
        if not isinstance(body, dict):
            return EventFacts()
        event_id, event_type = body.get("event_id"), body.get("event_type")
        return EventFacts(
            event_id if isinstance(event_id, str) and event_id else None,
            event_type if isinstance(event_type, str) and event_type else None,
            iso_seconds(body.get("occurred_at")),
        )

    def renew(self, body: bytes) -> bytes:
        parsed = parse_json_object(body)
        parsed["event_id"] = f"evt_{uuid.uuid4().hex[:26]}"
        return orjson.dumps(parsed)
