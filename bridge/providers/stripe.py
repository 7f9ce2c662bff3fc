"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]``.

Verified with the ``stripe`` SDK's header check (``WebhookSignature.verify_header``,
~6 µs) rather than ``Webhook.construct_event`` (~465 µs: it builds StripeObjects we do
not need). The SDK only rejects old timestamps, so the future side of the tolerance is
checked here. See https://docs.stripe.com/webhooks#verify-manually.

The header is parsed here, once, and the SDK is handed a canonical
``t=<t>,v1=<sig>…`` rebuilt from that parse, so the timestamp whose tolerance is
checked is by construction the one the HMAC covers. (The SDK splits on ``,`` without
stripping: given ``v1=…, t=<now>,t=<old>`` it signs with ``t=<old>`` while a lenient
parser sees ``t=<now>``.) A header with more than one ``t`` is malformed, and a ``v1``
that is not 64 hex digits can never match, so it is dropped before the SDK's compare
(which raises ``TypeError`` on non-ASCII text).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import orjson
import stripe

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import (
    EventFacts,
    ProviderBase,
    Sample,
    VerifiedEvent,
    check_tolerance,
    parse_json_object,
    require_secrets,
)
from bridge.providers.stripe_thin import is_thin, verified_thin

HEADER = "Stripe-Signature"
JSON = "application/json; charset=utf-8"


_DIGITS = re.compile(r"[0-9]{1,12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_header(header: str) -> tuple[int, list[str]]:
    """The one ``t`` and the well-formed ``v1`` signatures of a Stripe-Signature header.

    Elements are ``key=value`` separated by ``,``; keys are compared after stripping
    blanks, so `` t=`` counts as a second ``t``. Other schemes (``v0``) are ignored.
    """
    stamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "t":
            stamps.append(value)
        elif key == "v1" and _HEX64.fullmatch(value):
            signatures.append(value)
    if len(stamps) != 1 or not _DIGITS.fullmatch(stamps[0]):
        raise SignatureError(
            f"malformed {HEADER} header: expected exactly one t=<unix seconds>",
            reason="malformed_signature",
        )
    if not signatures:
        raise SignatureError(
            f"malformed {HEADER} header: no v1=<64 hex digits> signature",
            reason="malformed_signature",
        )
    return int(stamps[0]), signatures


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """``Stripe-Signature`` exactly as Stripe documents it: HMAC-SHA256 (hex) with the
    endpoint secret over ``"{timestamp}.{body}"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


#: A ``checkout.session.completed`` event in Stripe's shape (``bridge dev``'s sample).
SAMPLE = (
    Path(__file__).resolve().parent.parent / "samples" / "stripe_checkout_session_completed.json"
)


class StripeProvider(ProviderBase):
    """Stripe webhook endpoints (snapshot events, any API version)."""

    identifier: ClassVar[str] = "stripe"
    dedup_on: ClassVar[str] = "event id (body `id`, evt_...)"
    #: The event id is inside the signed body.
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
        require_secrets(secrets)
        header = headers.get(HEADER)
        if not header:
            raise SignatureError(f"missing {HEADER} header", reason="missing_signature")
        timestamp, signatures = parse_header(header)
        canonical = ",".join([f"t={timestamp}", *(f"v1={sig}" for sig in signatures)])
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8; Stripe signs UTF-8 JSON") from None
        for secret in secrets:
            try:
                stripe.WebhookSignature.verify_header(payload, canonical, secret, tolerance=None)
            except stripe.SignatureVerificationError:
                continue
            break
        else:
            raise SignatureError("signature matches none of the source's secrets")
        check_tolerance(timestamp, tolerance=tolerance, now=now)

        event = parse_json_object(body)
        if is_thin(event):  # an event destination's thin event: same signature scheme
            return verified_thin(event, body)
        event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
        if not isinstance(event_id, str) or not event_id:
            raise MalformedPayload("Stripe event has no string id")
        if not isinstance(event_type, str) or not event_type:
            raise MalformedPayload("Stripe event has no string type")
        if not isinstance(created, int | float) or isinstance(created, bool):
            raise MalformedPayload("Stripe event has no numeric created time")
        return VerifiedEvent(
            id=event_id, type=event_type, time=float(created), body=event, raw=body
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
        return {HEADER: signature_header(body, secret, int(now)), "Content-Type": JSON}

    def dev_secret(self) -> str:
        return "whsec_bridge_dev_secret"

    def sample(self) -> Sample:
        return Sample(SAMPLE.read_bytes())

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """``id``, ``type`` and ``created`` (Unix seconds) of the event object."""
        base = super().facts(body, headers)
        created = body.get("created") if isinstance(body, dict) else None
        if isinstance(created, int | float) and not isinstance(created, bool):
            return EventFacts(base.id, base.type, float(created))
        return base

    def renew(self, body: bytes) -> bytes:
        """A new ``evt_`` id: Stripe deduplicates on it, so re-sending is not a duplicate."""
        event = parse_json_object(body)
        event["id"] = f"evt_{uuid.uuid4().hex[:24]}"
        return orjson.dumps(event)
