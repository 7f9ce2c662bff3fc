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
from typing import ClassVar
from urllib.parse import parse_qs

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import (
    VerifiedEvent,
    parse_json_object,
    require_secrets,
    signed_digest,
)

HEADER = "X-Hub-Signature-256"


class GitHubProvider:
    """GitHub repository, organisation, app, marketplace and sponsors webhooks."""

    identifier: ClassVar[str] = "github"
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
    ) -> dict[str, str]:
        if not event_type:
            raise SignatureError("GitHub needs the event name (X-GitHub-Event)")
        return {
            HEADER: "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "X-GitHub-Event": event_type,
            "X-GitHub-Delivery": event_id or str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
