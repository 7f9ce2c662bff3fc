"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC of the body>``.

The event name travels in ``X-GitHub-Event`` and the delivery id in
``X-GitHub-Delivery``. The event type that mappings match is ``<event>.<action>`` when
the body has an ``action`` (``marketplace_purchase.purchased``), else ``<event>``.
GitHub signs neither a timestamp nor the delivery id: the same signed body re-sent
under a new ``X-GitHub-Delivery`` verifies again. So the event carries the digest of
the signed body, and intake deduplicates on it as well as on the delivery id (for
``BRIDGE_DEDUP_TTL``; after that a captured body can be replayed, as GitHub signs no
time). The event time is the time bridge received it.
See https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs

import orjson

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import (
    EventFacts,
    ProviderBase,
    Sample,
    VerifiedEvent,
    parse_json_object,
    require_secrets,
    signed_digest,
)

HEADER = "X-Hub-Signature-256"


#: A ``sponsorship`` event with action ``created`` (GitHub Sponsors).
_SAMPLE = {
    "action": "created",
    "sponsorship": {
        "node_id": "S_SampleBridgeDev",
        "created_at": "2026-11-01T00:00:00+00:00",
        "sponsorable": {"login": "octo-org", "id": 18404719, "type": "Organization"},
        "sponsor": {"login": "octocat", "id": 1, "type": "User"},
        "privacy_level": "public",
        "tier": {
            "node_id": "T_SampleBridgeDev",
            "name": "$5 a month",
            "monthly_price_in_cents": 500,
            "monthly_price_in_dollars": 5,
            "is_one_time": False,
            "is_custom_ammount": False,
        },
    },
    "sender": {"login": "octocat", "id": 1, "type": "User"},
}


class GitHubProvider(ProviderBase):
    """GitHub repository, organisation, app, marketplace and sponsors webhooks."""

    identifier: ClassVar[str] = "github"
    dedup_on: ClassVar[str] = "delivery id (X-GitHub-Delivery header) and the body's digest"
    #: ``X-GitHub-Delivery`` is not signed: replays are caught on the body's digest.
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
        require_secrets(secrets)
        header = headers.get(HEADER)
        if not header:
            raise SignatureError(f"missing {HEADER} header", reason="missing_signature")
        scheme, _, hexdigest = header.partition("=")
        if scheme != "sha256" or len(hexdigest) != 64:
            raise SignatureError(
                f"malformed {HEADER} header: expected sha256=<64 hex digits>",
                reason="malformed_signature",
            )
        given = hexdigest.encode("ascii", "replace")
        for secret in secrets:
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, given):
                break
        else:
            raise SignatureError("signature matches none of the source's secrets")

        delivery = headers.get("X-GitHub-Delivery")
        name = headers.get("X-GitHub-Event")
        if not delivery or not name:
            raise MalformedPayload("missing X-GitHub-Delivery or X-GitHub-Event header")
        raw = body
        if body.startswith(b"payload="):
            # Webhooks configured with content type application/x-www-form-urlencoded.
            form = parse_qs(body.decode("utf-8", "replace"))
            raw = form.get("payload", [""])[0].encode()
        event = parse_json_object(raw)
        action = event.get("action")
        event_type = f"{name}.{action}" if isinstance(action, str) and action else name
        return VerifiedEvent(
            id=delivery,
            type=event_type,
            time=now,
            body=event,
            raw=raw,
            signed_digest=signed_digest(body),
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
        if not event_type:
            raise SignatureError("GitHub needs the event name (X-GitHub-Event)")
        return {
            HEADER: "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "X-GitHub-Event": event_type,
            "X-GitHub-Delivery": event_id or str(uuid.uuid4()),
            "Content-Type": "application/json",
        }

    def sample(self) -> Sample:
        return Sample(orjson.dumps(_SAMPLE), event_type="sponsorship")

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """Type ``<X-GitHub-Event>.<action>`` and id ``X-GitHub-Delivery``; no time."""
        name = headers.get("X-GitHub-Event")
        action = body.get("action") if isinstance(body, dict) else None
        event_type = f"{name}.{action}" if name and isinstance(action, str) and action else name
        return EventFacts(headers.get("X-GitHub-Delivery"), event_type or None, None)
