"""Thin events and enrichment: what a worker fetches from Stripe before mapping.

**Thin events** (Stripe's event destinations: ``v1.*`` thin versions of snapshot events
and ``v2.*`` events, ``"object": "v2.core.event"``) carry no object. Intake verifies them
with the same ``Stripe-Signature`` check and stores them as they came, deduplicated on
the snapshot event id when Stripe gives one (``snapshot_event``), so a thin event and
its snapshot twin are one event. Before mapping, a worker turns each into the snapshot
event it stands for:

* ``v1.*`` with ``snapshot_event``: ``GET /v1/events/{snapshot_event}``, the very event
  the snapshot webhook carries, so both end as the same calls;
* ``v1.*`` without: ``GET related_object.url`` becomes ``data.object`` of an event of
  the snapshot type (``v1.customer.created`` -> ``customer.created``);
* ``v2.*``: ``GET /v2/core/events/{id}`` and the related object, as ``data.object``.

``context`` (a connected account) is sent as ``Stripe-Account`` (v1) or
``Stripe-Context`` (v2).

**Enrichment**: a Checkout Session event gets ``data.object.line_items`` (``GET
/v1/checkout/sessions/{id}/line_items``, products expanded) so the mapping can fill
``products`` on ``Order Completed``. Only with ``STRIPE_API_KEY``; without it,
snapshot events map as they are and a thin event is a dead letter saying so.

**Failures never lose the event**: when Stripe cannot be read now (429, 5xx, timeout),
the envelope waits in :data:`PENDING` (a sorted set scored by its next attempt, with
backoff like a delivery) and the workers' sweep puts it back in the inbox when due
(:func:`requeue_due`). A permanent failure (object gone, key lacks a permission) is a
:class:`~bridge.errors.MappingError`: a dead letter with its reason, replayable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import orjson
from redis import Redis

from bridge import keys
from bridge.envelope import Envelope
from bridge.errors import MappingError, ProviderApiError
from bridge.log import get_logger
from bridge.mappings.engine import Mapping, truthy
from bridge.providers.stripe_thin import is_thin
from bridge.settings import Settings

__all__ = ["PENDING", "Hydrator", "requeue_due"]

log = get_logger("bridge.hydrate")

#: Sorted set: envelope (bytes) -> when to try it again (Unix s).
PENDING = f"{keys.PREFIX}:hydrate:pending"

#: Hash: event id -> failed attempts so far (for the backoff).
ATTEMPTS = f"{keys.PREFIX}:hydrate:attempts"

#: Event types whose Checkout Session gets its line items.
CHECKOUT_TYPES = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)

#: Moves due envelopes back to the inbox atomically (never in both, never in neither).
REQUEUE_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, item in ipairs(due) do
  redis.call('ZREM', KEYS[1], item)
  redis.call('RPUSH', KEYS[2], item)
end
return #due
"""


@dataclass
class Hydrator:
    """Fetches what an envelope needs from Stripe's API before it is mapped."""

    redis: Redis
    settings: Settings
    api: Any = None  # a StripeApi, built on first use (None without STRIPE_API_KEY)

    def _client(self) -> Any:
        if self.api is None and self.settings.stripe_api_key is not None:
            from bridge.stripe_api import StripeApi

            # Few attempts here: a failing call parks the event in PENDING instead.
            self.api = StripeApi.from_settings(self.settings, attempts=2, backoff_max=2.0)
        return self.api

    def wants(self, envelope: Envelope, mapping: Mapping | None = None) -> bool:
        """Whether mapping ``envelope`` needs the API: a thin event, or a Checkout whose
        rules (those that apply to it, when ``mapping`` is given) read ``line_items``."""
        if is_thin(envelope.body):
            return True
        if self.settings.stripe_api_key is None or envelope.type not in CHECKOUT_TYPES:
            return False
        return mapping is None or reads_line_items(mapping, envelope)

    def hydrate(
        self, envelope: Envelope, raw: bytes | None = None, mapping: Mapping | None = None
    ) -> Envelope | None:
        """The envelope to map, or None when it was parked in PENDING (Stripe unreadable
        now). Raises MappingError for what can never be fetched."""
        if not self.wants(envelope, mapping):
            return envelope
        api = self._client()
        if api is None:
            raise MappingError(
                "thin event: fetching its object needs STRIPE_API_KEY (a restricted key "
                "with read access to the object)"
            )
        try:
            out = self._thin(api, envelope) if is_thin(envelope.body) else envelope
            if out.type in CHECKOUT_TYPES and (mapping is None or reads_line_items(mapping, out)):
                out = self._line_items(api, out)
        except ProviderApiError as exc:
            if not exc.retryable:
                self.redis.hdel(ATTEMPTS, envelope.id)
                raise MappingError(f"stripe_api: {exc.message}") from None
            self._park(envelope, raw, exc)
            return None
        self.redis.hdel(ATTEMPTS, envelope.id)
        return out

    # --- fetching -------------------------------------------------------------------

    def _thin(self, api: Any, envelope: Envelope) -> Envelope:
        thin: dict[str, Any] = envelope.body
        thin_type = str(thin.get("type", ""))
        context = thin.get("context") if isinstance(thin.get("context"), str) else None
        snapshot = thin.get("snapshot_event")
        if thin_type.startswith("v1.") and isinstance(snapshot, str) and snapshot:
            _, event = api.get_json(f"/v1/events/{snapshot}", account=context)
            return replace(
                envelope,
                id=snapshot,
                type=str(event.get("type", envelope.type)),
                time=float(event.get("created", envelope.time)),
                body=event,
            )
        related = thin.get("related_object")
        url = related.get("url") if isinstance(related, dict) else None
        data: dict[str, Any] = {}
        if thin_type.startswith("v2."):
            _, full = api.get_json(f"/v2/core/events/{thin['id']}", account=context)
            if isinstance(full.get("data"), dict):
                data.update(full["data"])
        if isinstance(url, str) and url.startswith("/"):
            _, obj = api.get_json(url, account=context)
            data["object"] = obj
        elif not data:
            raise MappingError(f"thin event {thin.get('id')} has no related object to fetch")
        body = {
            "id": envelope.id,
            "object": "event",
            "type": envelope.type,
            "created": int(envelope.time),
            "livemode": bool(thin.get("livemode")),
            "data": data,
        }
        if context:
            body["account"] = context
        return replace(envelope, body=body)

    def _line_items(self, api: Any, envelope: Envelope) -> Envelope:
        body = envelope.body
        session = body.get("data", {}).get("object", {}) if isinstance(body, dict) else {}
        session_id = session.get("id") if isinstance(session, dict) else None
        if not isinstance(session_id, str) or "line_items" in session:
            return envelope
        account = body.get("account") if isinstance(body.get("account"), str) else None
        _, items = api.get_json(
            f"/v1/checkout/sessions/{session_id}/line_items",
            {"limit": 100, "expand": ["data.price.product"]},
            account=account,
        )
        data = {**body["data"], "object": {**session, "line_items": items}}
        return replace(envelope, body={**body, "data": data})

    # --- waiting ------------------------------------------------------------------

    def _park(self, envelope: Envelope, raw: bytes | None, exc: ProviderApiError) -> None:
        attempts = int(self.redis.hincrby(ATTEMPTS, envelope.id, 1))
        wait = min(self.settings.retry_base * 2.0 ** (attempts - 1), self.settings.retry_max)
        if exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        item = raw if raw is not None else _encode(envelope)
        self.redis.zadd(PENDING, {item: time.time() + wait})
        log.warning(
            "hydrate_retry",
            source=envelope.source,
            event_id=envelope.id,
            attempts=attempts,
            wait=round(wait, 3),
            error=exc.message,
        )


#: id(rule) -> whether its calls read ``line_items`` (rules live as long as the process).
_READS: dict[int, bool] = {}


def reads_line_items(mapping: Mapping, envelope: Envelope) -> bool:
    """Whether a rule that applies to ``envelope`` (its ``on`` and ``when``) emits a call
    reading ``line_items``: only then is the fetch worth an API call."""
    for rule in mapping.rules_for(envelope.type):
        reads = _READS.get(id(rule))
        if reads is None:
            reads = _READS[id(rule)] = "line_items" in repr(rule.calls)
        if not reads:
            continue
        if rule.when is None or truthy(rule.when.search(envelope.body)):
            return True
    return False


def _encode(envelope: Envelope) -> bytes:
    return Envelope.encode(
        source=envelope.source,
        id=envelope.id,
        type=envelope.type,
        time=envelope.time,
        received_at=envelope.received_at,
        raw=orjson.dumps(envelope.body),
    )


def requeue_due(redis: Redis, limit: int = 500) -> int:
    """Put envelopes whose wait is over back in the inbox (the workers' sweep)."""
    moved = redis.eval(REQUEUE_LUA, 2, PENDING, keys.INBOX, repr(time.time()), limit)
    return int(moved or 0)
