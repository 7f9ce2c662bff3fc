"""The one shape every provider plugin has.

A provider verifies a raw request (body bytes + headers + the URL the provider posted
to) against the source's secrets and returns a :class:`VerifiedEvent`, or raises a
:class:`~bridge.errors.WebhookError` subclass saying why not. Verification always runs
on the exact raw bytes, before the body is parsed, compares in constant time, and
fails closed: any exception that is not a clear pass is a rejection (:func:`verify_closed`
is how intake calls a provider).

Replay protection is part of the plugin's shape: a provider whose signature does not
cover its event id (``signs_event_id = False``, GitHub) gets a
:attr:`VerifiedEvent.signed_digest`, and intake deduplicates on it as well as on the id,
so the same signed content re-sent under a new id is still a duplicate.

Everything else provider-specific lives with it too, so that no command needs an
if-chain over providers: how it signs (``bridge send``, tests), a development secret
and a sample event (``bridge dev``), where the event id, type and time come from
(:meth:`~Provider.facts`, for ``bridge preview`` and mapping test cases), and what it
deduplicates on. :class:`ProviderBase` gives the defaults a plugin may keep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel

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


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What an event says about itself before verification: for ``bridge preview`` and
    mapping test cases (None: not in what was given; the caller picks a default)."""

    id: str | None = None
    type: str | None = None
    #: Unix seconds.
    time: float | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample event the provider sends, for ``bridge dev`` and ``bridge send``."""

    body: bytes
    #: For schemes that carry the event type in a header (``sign(event_type=...)``).
    event_type: str | None = None


class Provider(Protocol):
    """A webhook provider: one ``verify()`` shape for all of them."""

    #: Name used in mapping files (``provider: stripe``).
    identifier: ClassVar[str]
    #: What intake deduplicates on, in words (``bridge sources``).
    dedup_on: ClassVar[str]
    #: Whether the signature covers the request URL (then intake passes ``url``).
    signs_url: ClassVar[bool]
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
        url: str = "",
    ) -> VerifiedEvent:
        """Check ``body`` against ``secrets`` (any one may match) or raise.

        ``url`` is the URL the provider posted to (the mapping's ``options.public_url``
        behind a proxy, else the request's own), given when :attr:`signs_url`."""
        ...

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
        """Headers the provider would send with ``body`` (for ``bridge send`` and tests).

        ``event_id`` / ``event_type`` are for schemes that carry them in headers."""
        ...

    def dev_secret(self) -> str:
        """A development secret in the format the scheme expects (``bridge dev``)."""
        ...

    def sample(self) -> Sample | None:
        """A sample event (``bridge dev`` prints a ready ``bridge send`` line for it)."""
        ...

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """Event id, type and time as far as ``body`` (parsed) and ``headers`` tell."""
        ...

    def renew(self, body: bytes) -> bytes:
        """``body`` with a fresh event id, so that sending it again is not a duplicate
        (``bridge send --new-id``); schemes with the id in a header return it as is."""
        ...


class ProviderBase:
    """Defaults for the self-description a plugin may keep (built-ins subclass it too).

    A plugin configured in the mapping file (its ``signature`` block) names the pydantic
    model of that block in :attr:`config_model` and takes the validated block in
    ``__init__``; lint reports the block's problems with their line and column."""

    identifier: ClassVar[str] = ""
    dedup_on: ClassVar[str] = "the provider's event id"
    signs_url: ClassVar[bool] = False
    #: Safe default: not signed, so ``verify()`` must give a ``signed_digest``.
    signs_event_id: ClassVar[bool] = False
    #: The model of the mapping's ``signature`` block (None: the plugin takes none).
    config_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, config: BaseModel | None = None) -> None:
        if config is not None:
            raise TypeError(f"provider {self.identifier!r} takes no configuration")

    def dev_secret(self) -> str:
        return "bridge-dev-secret"

    def sample(self) -> Sample | None:
        return None

    def facts(self, body: Any, headers: Mapping[str, str]) -> EventFacts:
        """Default: ``id`` and ``type`` members of a JSON object body."""
        if not isinstance(body, dict):
            return EventFacts()
        event_id, event_type = body.get("id"), body.get("type")
        return EventFacts(
            id=event_id if isinstance(event_id, str) and event_id else None,
            type=event_type if isinstance(event_type, str) and event_type else None,
        )

    def renew(self, body: bytes) -> bytes:
        return body


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
    url: str = "",
) -> VerifiedEvent:
    """Run ``provider.verify()`` failing closed: a bug or an unexpected input inside a
    verifier (an SDK's ``TypeError``, an ``OverflowError``) is a rejection with a
    reason, never an acceptance and never a 500. Also enforces the replay contract:
    a provider that does not sign its event id must give the digest of what it signs."""
    try:
        # ``url`` only for schemes that sign it: plugins written before it keep working.
        extra = {"url": url} if getattr(provider, "signs_url", False) else {}
        event = provider.verify(body, headers, secrets, tolerance=tolerance, now=now, **extra)
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
