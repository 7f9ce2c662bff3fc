"""The one shape every provider plugin has.

A provider verifies a raw request (body bytes + headers) against the source's secrets
and returns a :class:`VerifiedEvent`, or raises a :class:`~bridge.errors.WebhookError`
subclass saying why not. Verification always runs on the exact raw bytes, before the
body is parsed, compares in constant time, and fails closed: any exception that is not
a clear pass is a rejection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import orjson

from bridge.errors import MalformedPayload, SignatureError, TimestampOutOfTolerance

#: Seconds a signed timestamp may differ from now, either way, unless the mapping says.
DEFAULT_TOLERANCE = 300


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """A webhook whose signature checked out."""

    #: The provider's own id of the event (dedup key): Stripe ``evt_…``, ``webhook-id``,
    #: ``X-GitHub-Delivery``.
    id: str
    #: Event type the mapping's rules match on (``charge.succeeded``).
    type: str
    #: When the provider says the event happened, as Unix seconds.
    time: float
    #: The parsed JSON body.
    body: Any
    #: The body exactly as received (it is stored as-is, never re-serialised).
    raw: bytes


class Provider(Protocol):
    """A webhook provider: one ``verify()`` shape for all of them."""

    #: Name used in mapping files (``provider: stripe``).
    identifier: ClassVar[str]

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        tolerance: int,
        now: float,
    ) -> VerifiedEvent:
        """Check ``body`` against ``secrets`` (any one may match) or raise."""
        ...

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        now: float,
        event_id: str | None = None,
        event_type: str | None = None,
    ) -> dict[str, str]:
        """Headers the provider would send with ``body`` (for ``bridge send`` and tests).

        ``event_id`` / ``event_type`` are for schemes that carry them in headers."""
        ...


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a verified body; a provider only ever sends a JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedPayload("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise MalformedPayload("body is not a JSON object")
    return body


def check_tolerance(timestamp: float, *, tolerance: int, now: float) -> None:
    """Reject a signed timestamp further than ``tolerance`` seconds from ``now``."""
    if tolerance and abs(now - timestamp) > tolerance:
        direction, gap = ("old", "ago") if timestamp < now else ("far in the future", "ahead")
        raise TimestampOutOfTolerance(
            f"signed timestamp is too {direction} "
            f"({int(abs(now - timestamp))} s {gap}, tolerance {tolerance} s)"
        )


def require_secrets(secrets: Sequence[str]) -> None:
    """Fail closed when the source has no secret configured."""
    if not any(s.strip() for s in secrets):
        raise SignatureError("no secret configured for this source", reason="no_secret")
