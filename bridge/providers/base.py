"""The one shape every provider plugin has.

A provider verifies a raw request (body bytes + headers) against the source's secrets
and returns a :class:`VerifiedEvent`, or raises a :class:`~bridge.errors.WebhookError`
subclass saying why not. Verification always runs on the exact raw bytes, before the
body is parsed, compares in constant time, and fails closed: any exception that is not
a clear pass is a rejection (:func:`verify_closed` is how intake calls a provider).

Replay protection is part of the plugin's shape: a provider whose signature does not
cover its event id (``signs_event_id = False``, GitHub) gets a
:attr:`VerifiedEvent.signed_digest`, and intake deduplicates on it as well as on the id,
so the same signed content re-sent under a new id is still a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import orjson

from bridge.errors import (
    MalformedPayload,
    SignatureError,
    TimestampOutOfTolerance,
    WebhookError,
)

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
    #: SHA-256 (hex) of what the signature covers, when the provider does not sign
    #: ``id``: intake treats an event whose digest it has seen as a duplicate, whatever
    #: its id. None when the id is signed (deduplicating on it is enough).
    signed_digest: str | None = None


class Provider(Protocol):
    """A webhook provider: one ``verify()`` shape for all of them."""

    #: Name used in mapping files (``provider: stripe``).
    identifier: ClassVar[str]
    #: Whether the signature covers the event id used for deduplication. When it does
    #: not, anyone holding one signed request could replay it under fresh ids, so
    #: ``verify()`` must set :attr:`VerifiedEvent.signed_digest` (see
    #: :func:`signed_digest`); :func:`verify_closed` rejects an event without one.
    signs_event_id: ClassVar[bool]

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


def signed_digest(*parts: bytes) -> str:
    """SHA-256 hex of the signed content, for :attr:`VerifiedEvent.signed_digest`."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def verify_closed(
    provider: Provider,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance: int,
    now: float,
) -> VerifiedEvent:
    """Run ``provider.verify()`` failing closed: a bug or an unexpected input inside a
    verifier (an SDK's ``TypeError``, an ``OverflowError``) is a rejection with a
    reason, never an acceptance and never a 500. Also enforces the replay contract:
    a provider that does not sign its event id must give the digest of what it signs."""
    try:
        event = provider.verify(body, headers, secrets, tolerance=tolerance, now=now)
    except WebhookError:
        raise
    except Exception as exc:
        raise SignatureError(
            "the signature could not be verified", reason="unverifiable", cause=type(exc).__name__
        ) from exc
    if not getattr(provider, "signs_event_id", False) and not event.signed_digest:
        raise SignatureError(
            f"provider {provider.identifier!r} signs no event id and gave no signed digest",
            reason="unverifiable",
        )
    return event


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
