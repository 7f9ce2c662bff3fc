"""Segment: first-party calls from a site's own browsers and servers.

A source with ``provider: segment`` takes no webhooks: its ``secrets`` are write keys
(several during rotation) and its calls arrive at the Segment-compatible collection API
(``POST /v1/track`` ... ``/v1/batch``, see :mod:`bridge.collect`). Clients send complete
Segment calls, so there is nothing to map: the ``collect:`` section of the file says who
may send (origins, IP ranges, rate limits) and what happens to the calls (rules,
``privacy:``). Deduplication is on the client's own ``messageId``.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Mapping, Sequence
from typing import ClassVar

from bridge.errors import WebhookError
from bridge.providers.base import ProviderBase, VerifiedEvent


class NotAWebhookSource(WebhookError):
    """A webhook posted to a first-party collection source."""

    status = 404
    reason = "not_a_webhook_source"


class SegmentProvider(ProviderBase):
    """First-party collection with Segment's own libraries (analytics.js, analytics-node)."""

    identifier: ClassVar[str] = "segment"
    dedup_on: ClassVar[str] = "the client's messageId"
    signs_url: ClassVar[bool] = False
    #: Calls come in through ``/v1/*`` instead of ``/webhooks/<source>``.
    collects: ClassVar[bool] = True

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
        raise NotAWebhookSource(
            "this source collects Segment calls at /v1/track, /v1/batch, ...; it takes no webhooks"
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
        """A server library's headers: HTTP Basic auth with the write key as user."""
        import base64

        token = base64.b64encode(f"{secret}:".encode()).decode()
        return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def dev_secret(self) -> str:
        return f"wk_dev_{_secrets.token_hex(8)}"
