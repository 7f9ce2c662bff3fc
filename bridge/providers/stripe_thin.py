"""Stripe thin events (``"object": "v2.core.event"``) as intake stores them.

Event destinations send thin events (``v1.*`` thin versions of snapshot events, and
``v2.*`` events) signed with the same ``Stripe-Signature`` header as snapshot events;
:class:`~bridge.providers.stripe.StripeProvider` verifies both and hands thin ones to
:func:`verified_thin`. Their object is fetched by a worker before mapping
(bridge/hydrate.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.errors import MalformedPayload
from bridge.providers.base import VerifiedEvent

__all__ = ["is_thin", "snapshot_type", "verified_thin"]


def is_thin(body: Any) -> bool:
    """Whether ``body`` is a thin event notification (``"object": "v2.core.event"``)."""
    return isinstance(body, dict) and body.get("object") == "v2.core.event"


def _epoch(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise MalformedPayload("thin event has no ISO-8601 created time")


def snapshot_type(thin_type: str) -> str:
    """``v1.customer.created`` -> ``customer.created``; v2 types stay as they are."""
    return thin_type.removeprefix("v1.")


def verified_thin(event: dict[str, Any], raw: bytes) -> VerifiedEvent:
    """The verified event intake stores for a thin event: deduplicated on the snapshot
    event id when there is one, typed as its snapshot twin (rules match either)."""
    thin_id, thin_type = event.get("id"), event.get("type")
    if not isinstance(thin_id, str) or not thin_id:
        raise MalformedPayload("thin event has no string id")
    if not isinstance(thin_type, str) or not thin_type:
        raise MalformedPayload("thin event has no string type")
    snapshot = event.get("snapshot_event")
    event_id = snapshot if isinstance(snapshot, str) and snapshot else thin_id
    return VerifiedEvent(
        id=event_id,
        type=snapshot_type(thin_type),
        time=_epoch(event.get("created")),
        body=event,
        raw=raw,
    )
