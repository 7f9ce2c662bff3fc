"""Feed events from Stripe's Events API through the very path webhooks take.

Each listed event goes through :meth:`bridge.intake.store.EventStore.accept`: the same
dedup key as its webhook (an event intake already has is a duplicate, never a second
delivery; a webhook arriving during the backfill is deduplicated against it by the same
atomic script), the same durable inbox, the same mapping and outbox in the workers.

A backfill lists newest first over a fixed window ``[since, until]`` and keeps a
:class:`Checkpoint` in Redis after every page (the window, the cursor, the counts), so
an interrupted run resumes where it stopped; events of a half-fed page are simply
duplicates the second time.

Refusals (:class:`BackfillRefused`): a window older than the 30 days Stripe keeps, or
older than ``BRIDGE_DEDUP_TTL`` (events received before that are no longer remembered,
so feeding them again would deliver them twice).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from redis import Redis

from bridge import keys, metrics
from bridge.catalogue import Source
from bridge.errors import BridgeError, MalformedPayload
from bridge.intake.store import EventStore, Outcome
from bridge.providers import VerifiedEvent
from bridge.stripe_api import PAGE_SIZE, RETENTION_SECONDS, EventPage, StripeApi

__all__ = [
    "Backfill",
    "BackfillRefused",
    "Checkpoint",
    "Counts",
    "checkpoint_key",
    "feed_event",
    "parse_when",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class BackfillRefused(BridgeError):
    """A backfill that must not run as asked (window, checkpoint); the message says why."""


def checkpoint_key(source: str, account: str | None = None) -> str:
    """Key holding the checkpoint of ``source``'s backfill (per connected account)."""
    base = f"{keys.PREFIX}:backfill:{source}"
    return f"{base}:{account}" if account else base


def parse_when(text: str, now: float) -> int:
    """Unix seconds from ``3d`` / ``12h`` / ``90m`` / ``2w`` (ago), an ISO-8601 date or
    time (UTC unless it says), or Unix seconds."""
    match = _DURATION.match(text)
    if match:
        return int(now - float(match.group(1)) * _UNITS[match.group(2)])
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    try:
        parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise BackfillRefused(
            f"cannot read {text!r} as a time: use 3d, 12h, 90m, an ISO-8601 date or Unix seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Counts:
    """What a backfill (or a reconcile run) did so far."""

    listed: int = 0
    new: int = 0
    duplicates: int = 0
    #: Events of a type the mapping does not handle (intake answers ``ignored``).
    ignored: int = 0
    pages: int = 0


@dataclass
class Checkpoint:
    """A backfill's window and how far it got, kept in Redis after every page."""

    source: str
    since: int
    until: int
    types: list[str] = field(default_factory=list)
    account: str | None = None
    #: The id of the last event of the last page fed (``starting_after`` on resume).
    cursor: str | None = None
    counts: Counts = field(default_factory=Counts)
    started_at: float = 0.0
    done: bool = False

    def save(self, redis: Redis) -> None:
        redis.set(checkpoint_key(self.source, self.account), orjson.dumps(asdict(self)))

    @classmethod
    def load(cls, redis: Redis, source: str, account: str | None = None) -> Checkpoint | None:
        raw = redis.get(checkpoint_key(source, account))
        if raw is None:
            return None
        data = orjson.loads(raw)
        data["counts"] = Counts(**data.get("counts", {}))
        return cls(**data)


def feed_event(
    store: EventStore,
    source: Source,
    raw: bytes,
    event: dict[str, Any],
    counters: tuple[str, str],
) -> Outcome | None:
    """Feed one listed event through intake's dedup and inbox; None: a type the mapping
    does not handle (ignored, as intake would)."""
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedPayload("listed event has no string id")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedPayload(f"listed event {event_id} has no string type")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise MalformedPayload(f"listed event {event_id} has no numeric created time")
    if not source.mapping.handles(event_type):
        return None
    verified = VerifiedEvent(id=event_id, type=event_type, time=float(created), body=event, raw=raw)
    return store.accept(source.name, verified, counters=counters)


def with_account(
    raw: bytes, event: dict[str, Any], account: str | None
) -> tuple[bytes, dict[str, Any]]:
    """A connected account's event as its Connect webhook carries it (with ``account``)."""
    if account is None or event.get("account") == account:
        return raw, event
    event = {**event, "account": account}
    return orjson.dumps(event), event


@dataclass
class Backfill:
    """One source's backfill: list pages, feed events, keep the checkpoint."""

    api: StripeApi
    store: EventStore
    source: Source
    redis: Redis
    #: Called after every page with the checkpoint (the CLI prints progress).
    on_page: Callable[[Checkpoint, float], None] | None = None
    clock: Callable[[], float] = time.time
    #: Events per page (Stripe's ``limit``, 1..100).
    page_size: int = PAGE_SIZE

    def plan(
        self,
        *,
        since: int,
        until: int | None,
        types: Sequence[str],
        account: str | None,
        dedup_ttl: int,
        restart: bool = False,
    ) -> Checkpoint:
        """A new checkpoint for the window, or BackfillRefused saying why not."""
        now = self.clock()
        until = int(now) if until is None else until
        oldest = now - RETENTION_SECONDS
        if since < oldest:
            raise BackfillRefused(
                f"--since {iso(since)} is more than 30 days ago: Stripe keeps events for 30 "
                f"days, so the earliest a backfill can start is {iso(oldest + 60)}"
            )
        if since < now - dedup_ttl:
            raise BackfillRefused(
                f"--since {iso(since)} is older than BRIDGE_DEDUP_TTL ({dedup_ttl} s): events "
                "received before then are no longer remembered and would be delivered twice; "
                f"start at {iso(now - dedup_ttl + 60)} or later, or raise BRIDGE_DEDUP_TTL "
                f"(at most {RETENTION_SECONDS} s covers everything Stripe keeps)"
            )
        if until < since:
            raise BackfillRefused(f"--until {iso(until)} is before --since {iso(since)}")
        previous = Checkpoint.load(self.redis, self.source.name, account)
        if previous is not None and not previous.done and not restart:
            whose = f" for account {account}" if account else ""
            raise BackfillRefused(
                f"an unfinished backfill of {self.source.name!r}{whose} exists (since "
                f"{iso(previous.since)}, until {iso(previous.until)}, "
                f"{previous.counts.listed} events listed): run with --resume to continue "
                "it or --restart to start over"
            )
        return Checkpoint(self.source.name, since, until, list(types), account, started_at=now)

    def unfinished(self, account: str | None = None) -> Checkpoint | None:
        """The unfinished checkpoint of the platform (or ``account``), if any."""
        previous = Checkpoint.load(self.redis, self.source.name, account)
        return previous if previous is not None and not previous.done else None

    def resume(self, account: str | None = None) -> Checkpoint:
        """The unfinished checkpoint, or BackfillRefused."""
        previous = self.unfinished(account)
        if previous is None:
            raise BackfillRefused(f"no unfinished backfill of {self.source.name!r} to resume")
        if previous.since < self.clock() - RETENTION_SECONDS:
            raise BackfillRefused(
                "the unfinished backfill reaches back more than the 30 days Stripe keeps; "
                "start a new one with --restart"
            )
        return previous

    def run(self, checkpoint: Checkpoint, *, max_pages: int = 100_000) -> Checkpoint:
        """List and feed until the window is done (or ``max_pages``); the checkpoint is
        saved after every page, and marked done at the end."""
        checkpoint.save(self.redis)
        started = time.monotonic()
        counters = (
            metrics.BACKFILL_EVENTS.field(source=self.source.name, outcome="new"),
            metrics.BACKFILL_EVENTS.field(source=self.source.name, outcome="duplicate"),
        )
        pages = self.api.iter_events(
            starting_after=checkpoint.cursor,
            max_pages=max_pages,
            gte=checkpoint.since,
            lte=checkpoint.until,
            types=checkpoint.types,
            account=checkpoint.account,
            limit=self.page_size,
        )
        page: EventPage | None = None
        for page in pages:
            for raw, event in page.events:
                raw, event = with_account(raw, event, checkpoint.account)
                outcome = feed_event(self.store, self.source, raw, event, counters)
                counts = checkpoint.counts
                counts.listed += 1
                if outcome is None:
                    counts.ignored += 1
                elif outcome is Outcome.ACCEPTED:
                    counts.new += 1
                else:
                    counts.duplicates += 1
            checkpoint.counts.pages += 1
            checkpoint.cursor = page.last_id or checkpoint.cursor
            checkpoint.save(self.redis)
            if self.on_page:
                self.on_page(checkpoint, time.monotonic() - started)
        if page is None or not page.has_more:
            checkpoint.done = True
            checkpoint.save(self.redis)
        return checkpoint
