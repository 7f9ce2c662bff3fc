"""Recurly (JSON webhooks): ``recurly-signature: <timestamp>,<hex>[,<hex>…]``.

Each signature is the hex HMAC-SHA256, keyed with the endpoint's secret key, of
``<timestamp> + "." + raw body``; several are present for 24 hours after the key is
regenerated. The timestamp is in **milliseconds** (Recurly's client libraries:
``DEFAULT_TOLERANCE = 5 * 60 * 1000``); a 10-digit value (seconds, as one docs example
shows) is read as seconds. It is signed, so it is checked against the tolerance. XML
webhooks are unsigned and refused. Dedup on the body's notification ``id`` (signed).
JSON webhooks carry only ids (``uuid`` of the object): amounts need the API.
See https://docs.recurly.com/recurly-subscriptions/docs/signature-verification.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from bridge.errors import SignatureError
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
    text_member,
    unhex,
)

HEADER = "recurly-signature"
_STAMP = re.compile(r"[0-9]{9,14}")

_SAMPLE = {
    "id": "rafhdbbf41mc",
    "object_type": "subscription",
    "site_id": "qc326l1hl8k9",
    "event_type": "created",
    "event_time": "2026-11-01T10:00:00Z",
    "uuid": "63ab531e1d5b1d47eaf1ef44eeb853c3",
}


def _type(body: Any) -> str | None:
    kind, action = text_member(body, "object_type"), text_member(body, "event_type")
    return f"{kind}.{action}" if kind and action else None


class RecurlyProvider(ProviderBase):
    """Recurly JSON webhook notifications (subscriptions, payments, invoices, accounts)."""

    identifier: ClassVar[str] = "recurly"
    dedup_on: ClassVar[str] = "notification id (body `id`, signed)"
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
        stamp, *rest = require_header(headers, HEADER).split(",")
        stamp = stamp.strip()
        if not _STAMP.fullmatch(stamp) or not rest:
            raise SignatureError(
                f"malformed {HEADER} header: expected <timestamp>,<hex>[,<hex>]",
                reason="malformed_signature",
            )
        candidates = [unhex(s.strip(), 32, HEADER) for s in rest]
        signed = stamp.encode() + b"." + body
        match_any(secrets, lambda s: mac("sha256", s, signed), candidates)
        seconds = int(stamp) / 1000 if len(stamp) >= 12 else float(stamp)
        check_tolerance(seconds, tolerance=tolerance, now=now)
        parsed = parse_json_object(body)
        notification = require_text(parsed, "id", provider="Recurly")
        name = _type(parsed) or require_text(parsed, "event_type", provider="Recurly")
        when = iso_seconds(parsed.get("event_time"))
        return event(
            id=notification, type=name, time=when if when else seconds, body=parsed, raw=body
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
        stamp = str(int(now * 1000))
        signature = hexdigest("sha256", secret, stamp.encode() + b"." + body)
        return {HEADER: f"{stamp},{signature}", "Content-Type": "application/json"}

    def dev_secret(self) -> str:
        return "bridgedevrecurlysecret0123456789"

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        return EventFacts(
            text_member(body, "id"), _type(body), iso_seconds(text_member(body, "event_time"))
        )

    def renew(self, body: bytes) -> bytes:
        parsed = parse_json_object(body)
        parsed["id"] = uuid.uuid4().hex[:12]
        return orjson.dumps(parsed)
