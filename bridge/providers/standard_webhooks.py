"""Standard Webhooks (Svix, Clerk, Resend, …): ``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64> [v1,<base64>…]`` — or the same with ``svix-`` headers.

Secrets are ``whsec_<base64>``. The maintained ``standardwebhooks`` package decodes the
secret and computes the signature; the tolerance is ours (the package fixes it at 5
minutes) and the comparison is constant-time. See https://www.standardwebhooks.com/.

``webhook-id`` is part of the signed content, so deduplicating on it stops replays;
``webhook-timestamp`` must be plain decimal seconds (at most 11 digits, so it is
always a valid date for the signer).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

import orjson
from standardwebhooks.webhooks import Webhook

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


@lru_cache(maxsize=64)
def _webhook(secret: str) -> Webhook | None:
    """The signer for one secret, or None when the secret is not valid base64."""
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, Exception):
        return None


_SECONDS = re.compile(r"[0-9]{1,11}")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(f"webhook-{name}") or headers.get(f"svix-{name}")


def _signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures of a space-separated signature header."""
    found: list[bytes] = []
    for item in header.split(" "):
        version, sep, value = item.partition(",")
        if not sep:
            continue
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


#: A Clerk ``user.created`` event (Clerk signs with Standard Webhooks, through Svix).
_SAMPLE = {
    "type": "user.created",
    "object": "event",
    "timestamp": 1763800000000,
    "data": {
        "id": "user_2SampleBridgeDev",
        "object": "user",
        "email_addresses": [{"id": "idn_1", "email_address": "ada@example.com"}],
        "primary_email_address_id": "idn_1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "created_at": 1763800000000,
    },
}


class StandardWebhooksProvider(ProviderBase):
    """Any sender that follows the Standard Webhooks specification."""

    identifier: ClassVar[str] = "standard-webhooks"
    dedup_on: ClassVar[str] = "message id (webhook-id header)"
    #: ``webhook-id`` is signed (``id.timestamp.body``).
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
        msg_id = _header(headers, "id")
        stamp = _header(headers, "timestamp")
        signature = _header(headers, "signature")
        if not (msg_id and stamp and signature):
            raise SignatureError(
                "missing webhook-id, webhook-timestamp or webhook-signature header",
                reason="missing_signature",
            )
        if not _SECONDS.fullmatch(stamp):
            raise SignatureError(
                "webhook-timestamp is not decimal Unix seconds", reason="malformed_signature"
            )
        timestamp = int(stamp)
        candidates = _signatures(signature)
        if not candidates:
            raise SignatureError(
                "webhook-signature has no v1,<base64> signature", reason="malformed_signature"
            )
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8") from None
        signed_at = datetime.fromtimestamp(timestamp, tz=UTC)
        for secret in secrets:
            signer = _webhook(secret)
            if signer is None:
                continue
            expected = base64.b64decode(signer.sign(msg_id, signed_at, payload).split(",", 1)[1])
            if any(hmac.compare_digest(expected, c) for c in candidates):
                break
        else:
            raise SignatureError("signature matches none of the source's secrets")
        check_tolerance(timestamp, tolerance=tolerance, now=now)

        event = parse_json_object(body)
        event_type = event.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise MalformedPayload("Standard Webhooks payload has no string type")
        return VerifiedEvent(
            id=msg_id, type=event_type, time=float(timestamp), body=event, raw=body
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
        signer = _webhook(secret)
        if signer is None:
            raise SignatureError("secret is not whsec_<base64>", reason="bad_secret")
        msg_id = event_id or f"msg_{uuid.uuid4().hex}"
        stamp = int(now)
        signature = signer.sign(msg_id, datetime.fromtimestamp(stamp, tz=UTC), body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "whsec_" + base64.b64encode(b"bridge-dev-standard-webhooks-key").decode()

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE))

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """``type`` from the body; id and time from the webhook-id/-timestamp headers."""
        base = super().facts(body, headers)
        stamp = _header(headers, "timestamp")
        time = float(stamp) if stamp and stamp.isdigit() else None
        return EventFacts(_header(headers, "id"), base.type, time)
