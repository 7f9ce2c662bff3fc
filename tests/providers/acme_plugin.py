"""A third-party provider plugin, as a package outside bridge would ship it.

Acme signs ``"<url>\\n<body>"`` with HMAC-SHA256 (hex) in ``X-Acme-Signature``, puts the
event id in ``X-Acme-Id`` and the event type in the body's ``kind``. It registers
through the ``bridge.providers`` entry point group, like the built-ins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from bridge.errors import SignatureError
from bridge.providers import EventFacts, ProviderBase, Sample, VerifiedEvent
from bridge.providers.base import signed_digest


def _mac(secret: str, url: str, body: bytes) -> str:
    return hmac.new(secret.encode(), url.encode() + b"\n" + body, hashlib.sha256).hexdigest()


class AcmeProvider(ProviderBase):
    identifier: ClassVar[str] = "acme"
    dedup_on: ClassVar[str] = "X-Acme-Id header"
    signs_url: ClassVar[bool] = True

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
        given = headers.get("X-Acme-Signature", "")
        if not any(s and hmac.compare_digest(_mac(s, url, body), given) for s in secrets):
            raise SignatureError("acme signature does not match")
        event = json.loads(body)
        # X-Acme-Id is not signed: give intake the digest of what is (replay protection).
        digest = signed_digest(url.encode(), b"\n", body)
        return VerifiedEvent(headers["X-Acme-Id"], event["kind"], now, event, body, digest)

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
            "X-Acme-Signature": _mac(secret, url, body),
            "X-Acme-Id": event_id or f"acme_{uuid.uuid4().hex}",
            "Content-Type": "application/json",
        }

    def dev_secret(self) -> str:
        return "acme-dev-secret"

    def sample(self) -> Sample:
        return Sample(
            json.dumps({"kind": "order.paid", "order": {"id": "o_1", "user": "u_1"}}).encode()
        )

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        kind = body.get("kind") if isinstance(body, dict) else None
        return EventFacts(headers.get("X-Acme-Id"), kind, None)
