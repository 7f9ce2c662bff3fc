"""Continuous reconcile: find the events the webhook path missed, and feed them.

A periodic RQ job (:func:`reconcile_job`, one per Stripe source that is on) lists the
events Stripe created in a recent window and feeds each one through intake's
:meth:`~bridge.intake.store.EventStore.accept`, exactly as backfill does. An event
intake already has is a duplicate (counted in ``bridge_reconcile_seen_total``); one it
never saw is made durable, mapped and delivered, counted in
``bridge_reconciled_events_total{source}`` and logged (``reconciled_event``): it means
the webhook path missed something (wrong secret, endpoint disabled, outage).

The window is ``[now - BRIDGE_RECONCILE_LOOKBACK, now - BRIDGE_RECONCILE_GRACE]``: events
younger than the grace are left to their webhook (Stripe delivers within seconds), and
the lookback is several intervals long, so every event is seen by several runs. After a
failed run (API down) the next one starts where the last successful one ended, as far
back as Stripe and the dedup window allow: a failure never loses an event.

It also lists ``delivery_success=false`` events: what Stripe itself reports it could not
deliver to a webhook endpoint. Each is logged (``stripe_undelivered_event``) and kept
(``bridge reconcile SOURCE`` lists them) and counted on first sighting.

Scheduling is RQ's own: :func:`ensure_scheduled`, called from the workers' sweep, puts
one job per source in RQ's scheduled registry (``Queue.enqueue_in``, a fixed job id, a
Redis timer so only one worker does it per interval), and the workers run RQ's
scheduler (the worker class turns it on when reconcile is configured). No new process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from bridge import keys, metrics
from bridge.backfill import feed_event, with_account
from bridge.catalogue import Catalogue, Source
from bridge.errors import ProviderApiError
from bridge.intake.store import EventStore, Outcome
from bridge.log import get_logger
from bridge.settings import Settings
from bridge.stripe_api import RETENTION_SECONDS, StripeApi

__all__ = [
    "RECONCILE_JOB",
    "Reconciled",
    "ensure_scheduled",
    "reconcile",
    "reconcile_job",
    "stripe_sources",
    "wanted",
]

log = get_logger("bridge.reconcile")

#: Import path of the RQ job.
RECONCILE_JOB = "bridge.reconcile.reconcile_job"

#: Undelivered events are kept for as long as Stripe keeps them.
UNDELIVERED_KEEP = RETENTION_SECONDS

#: Undelivered events kept per source at most (bounded memory whatever Stripe reports).
UNDELIVERED_MAX = 10_000


def job_id(source: str) -> str:
    """The fixed RQ job id of ``source``'s reconcile (at most one scheduled at a time)."""
    return f"bridge-reconcile-{source}"


def timer_key(source: str) -> str:
    """Set (NX, EX interval) by the worker that schedules the next run."""
    return f"{keys.PREFIX}:reconcile:timer:{source}"


def last_key(source: str) -> str:
    """The upper end of the last successful run's window (Unix seconds)."""
    return f"{keys.PREFIX}:reconcile:last:{source}"


def undelivered_key(source: str) -> str:
    """Sorted set: event id -> created, of events Stripe reports it failed to deliver."""
    return f"{keys.PREFIX}:reconcile:undelivered:{source}"


def wanted(settings: Settings) -> bool:
    """Whether reconcile runs at all: a Stripe API key and a non-zero interval."""
    return settings.stripe_api_key is not None and settings.reconcile_interval > 0


def stripe_sources(catalogue: Catalogue) -> list[Source]:
    """The sources reconcile covers: those that are on and read Stripe's events."""
    return [s for s in catalogue if s.on and s.provider_name == "stripe"]


@dataclass
class Reconciled:
    """What one run did."""

    source: str
    since: int
    until: int
    listed: int = 0
    #: Events intake never received, now fed (the metric).
    reconciled: list[str] = field(default_factory=list)
    seen: int = 0
    ignored: int = 0
    #: Events Stripe reports undelivered in the window (ids), and how many are new.
    undelivered: list[str] = field(default_factory=list)
    undelivered_new: int = 0
    error: str | None = None
    #: False when the worker was stopping and the run ended early (the next run covers
    #: the same window again).
    complete: bool = True

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["reconciled"] = len(self.reconciled)
        data["undelivered"] = len(self.undelivered)
        return data


def window(redis: Redis, settings: Settings, source: str, now: float) -> tuple[int, int]:
    """``(since, until)`` of the next run (see the module docstring)."""
    until = int(now - settings.reconcile_grace)
    since = int(now - settings.reconcile_lookback)
    last = redis.get(last_key(source))
    if last is not None:
        # Catch up after failed runs, with the grace as an overlap.
        since = min(since, int(float(last)) - settings.reconcile_grace)
    oldest = int(now - min(RETENTION_SECONDS, settings.dedup_ttl)) + 60
    return max(since, oldest), until


def reconcile(
    api: StripeApi,
    store: EventStore,
    source: Source,
    settings: Settings,
    *,
    now: float | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Reconciled:
    """One run for ``source`` (the platform, then each connected account the mapping
    lists): feed what intake never saw, record what Stripe did not deliver. Raises
    ProviderApiError when Stripe cannot be read (nothing is lost: the next run starts
    where the last successful one ended)."""
    redis = store.redis
    now = time.time() if now is None else now
    since, until = window(redis, settings, source.name, now)
    result = Reconciled(source.name, since, until)
    for account in [None, *source.mapping.connect_accounts]:
        _reconcile_account(api, store, source, result, account, stopping)
    undelivered = undelivered_key(source.name)
    pipe = redis.pipeline(transaction=False)
    if result.undelivered_new:
        pipe.hincrby(
            keys.METRICS,
            metrics.RECONCILE_UNDELIVERED.field(source=source.name),
            result.undelivered_new,
        )
    pipe.zremrangebyscore(undelivered, "-inf", now - UNDELIVERED_KEEP)
    pipe.zremrangebyrank(undelivered, 0, -UNDELIVERED_MAX - 1)
    if result.complete:
        pipe.set(last_key(source.name), str(until))
    pipe.execute()
    return result


def _reconcile_account(
    api: StripeApi,
    store: EventStore,
    source: Source,
    result: Reconciled,
    account: str | None,
    stopping: Callable[[], bool],
) -> None:
    redis = store.redis
    since, until = result.since, result.until
    counters = (
        metrics.RECONCILED_EVENTS.field(source=source.name),
        metrics.RECONCILE_SEEN.field(source=source.name),
    )
    for page in api.iter_events(gte=since, lte=until, account=account):
        if stopping():  # SIGTERM: hand back within seconds; the next run redoes it
            result.complete = False
            return
        for raw, event in page.events:
            raw, event = with_account(raw, event, account)
            result.listed += 1
            outcome = feed_event(store, source, raw, event, counters)
            if outcome is None:
                result.ignored += 1
            elif outcome is Outcome.ACCEPTED:
                result.reconciled.append(str(event["id"]))
                log.warning(
                    "reconciled_event",
                    source=source.name,
                    event_id=event["id"],
                    event_type=event["type"],
                    created=event["created"],
                    account=account,
                    why="listed by Stripe's Events API but never received as a webhook",
                )
            else:
                result.seen += 1
    undelivered = undelivered_key(source.name)
    for page in api.iter_events(gte=since, lte=until, delivery_success=False, account=account):
        for _, event in page.events:
            event_id = str(event["id"])
            result.undelivered.append(event_id)
            if redis.zadd(undelivered, {event_id: float(event["created"])}, nx=True):
                result.undelivered_new += 1
                log.warning(
                    "stripe_undelivered_event",
                    source=source.name,
                    event_id=event_id,
                    event_type=event.get("type"),
                    created=event.get("created"),
                    pending_webhooks=event.get("pending_webhooks"),
                    account=account,
                )


def run_for(
    settings: Settings,
    redis: Redis,
    catalogue: Catalogue,
    name: str,
    stopping: Callable[[], bool] = lambda: False,
) -> Reconciled:
    """Reconcile source ``name`` now, logging one summary line (errors included)."""
    source = catalogue.get(name)
    if source is None or not source.on or source.provider_name != "stripe":
        raise ProviderApiError(f"source {name!r} is not an enabled Stripe source", retryable=False)
    api = StripeApi.from_settings(settings)
    store = EventStore(redis, settings.dedup_ttl)
    try:
        result = reconcile(api, store, source, settings, stopping=stopping)
    except ProviderApiError as exc:
        redis.hincrby(keys.METRICS, metrics.RECONCILE_FAILURES.field(source=name), 1)
        log.error("reconcile", source=name, error=exc.message, retryable=exc.retryable)
        raise
    log_fn = log.warning if result.reconciled else log.info
    log_fn("reconcile", **result.summary())
    return result


def reconcile_job(source: str) -> dict[str, Any]:
    """RQ job: reconcile ``source`` with the worker's settings and catalogue."""
    from bridge.delivery.runtime import STOPPING, get_runtime

    runtime = get_runtime()
    try:
        result = run_for(
            runtime.settings, runtime.redis, runtime.mapper.catalogue, source, STOPPING.is_set
        )
    except ProviderApiError as exc:
        return {"source": source, "error": exc.message}
    return result.summary()


def ensure_scheduled(redis: Redis, settings: Settings, catalogue: Catalogue) -> list[str]:
    """Schedule the next reconcile of every Stripe source whose timer ran out (RQ's
    ``enqueue_in``; the workers' scheduler enqueues it when due). Returns the sources
    scheduled now."""
    if not wanted(settings):
        return []
    interval = settings.reconcile_interval
    scheduled = []
    queue: Queue | None = None
    for source in stripe_sources(catalogue):
        if not redis.set(timer_key(source.name), "1", nx=True, ex=interval):
            continue
        if _pending(redis, job_id(source.name)):
            continue  # a run longer than the interval: never two at once for a source
        queue = queue or Queue(keys.QUEUE, connection=redis)
        queue.enqueue_in(
            timedelta(seconds=interval),
            RECONCILE_JOB,
            source.name,
            job_id=job_id(source.name),
            job_timeout=max(60, interval),
            result_ttl=max(60, interval * 2),
            failure_ttl=86400,
            description=f"reconcile {source.name}",
        )
        scheduled.append(source.name)
    return scheduled


#: RQ job states in which the job will still run (or is running).
_LIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED})


def _pending(redis: Redis, rq_job_id: str) -> bool:
    """Whether the source's reconcile job is still queued, scheduled or running."""
    try:
        job = Job.fetch(rq_job_id, connection=redis)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in _LIVE


def undelivered(redis: Redis, source: str, limit: int = 100) -> list[tuple[str, float]]:
    """The newest events Stripe reports it failed to deliver (id, created)."""
    rows: list[tuple[bytes | str, float]] = redis.zrevrange(  # type: ignore[assignment]
        undelivered_key(source), 0, limit - 1, withscores=True
    )
    return [(k.decode() if isinstance(k, bytes) else str(k), float(v)) for k, v in rows]
