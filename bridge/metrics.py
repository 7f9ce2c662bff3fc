"""Cluster-wide metrics kept in Redis and rendered in Prometheus text format.

Counters live as fields of one Redis hash (:data:`bridge.keys.METRICS`), so every web
and worker process adds to the same numbers without Prometheus multiprocess files, and
the intake script increments them in the same round trip that stores the event. A
field is ``<metric>|<label>=<value>,<label>=<value>``. ``GET /metrics`` reads the hash
once and renders it with ``prometheus_client``'s exposition code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis

from bridge import keys


@dataclass(frozen=True)
class Counter:
    """A counter stored in the metrics hash."""

    name: str
    help: str
    labels: tuple[str, ...] = ()

    def field(self, **labels: str) -> str:
        """The hash field for one label combination."""
        return self.name + "|" + ",".join(f"{k}={labels[k]}" for k in self.labels)


@dataclass(frozen=True)
class Histogram:
    """A histogram stored in the metrics hash as cumulative ``le`` buckets, sum, count."""

    name: str
    help: str
    buckets: tuple[float, ...]

    def fields(self, value: float) -> list[tuple[str, float]]:
        """Hash fields (and increments) that observing ``value`` touches."""
        out: list[tuple[str, float]] = [(f"{self.name}|sum", value), (f"{self.name}|count", 1)]
        out.extend((f"{self.name}|le={b}", 1) for b in self.buckets if value <= b)
        return out


WEBHOOKS_RECEIVED = Counter(
    "bridge_webhooks_received_total", "Webhook requests received, by source.", ("source",)
)
WEBHOOKS_ACCEPTED = Counter(
    "bridge_webhooks_accepted_total", "Verified new events made durable, by source.", ("source",)
)
WEBHOOKS_DUPLICATE = Counter(
    "bridge_webhooks_duplicate_total",
    "Verified events dropped as re-deliveries within BRIDGE_DEDUP_TTL.",
    ("source",),
)
WEBHOOKS_IGNORED = Counter(
    "bridge_webhooks_ignored_total",
    "Verified events of a type no rule handles, by source.",
    ("source",),
)
WEBHOOKS_REJECTED = Counter(
    "bridge_webhooks_rejected_total",
    "Webhook requests refused, by source and reason.",
    ("source", "reason"),
)

#: Every counter ``GET /metrics`` renders; the delivery code appends its own.
COUNTERS: list[Counter] = [
    WEBHOOKS_ACCEPTED,
    WEBHOOKS_DUPLICATE,
    WEBHOOKS_IGNORED,
    WEBHOOKS_REJECTED,
]

#: Counters computed at scrape time as the per-source sum of others: every request ends
#: in exactly one outcome, so the webhook path need not count "received" separately.
DERIVED: dict[Counter, tuple[Counter, ...]] = {
    WEBHOOKS_RECEIVED: (WEBHOOKS_ACCEPTED, WEBHOOKS_DUPLICATE, WEBHOOKS_IGNORED, WEBHOOKS_REJECTED)
}

#: Every histogram ``GET /metrics`` renders.
HISTOGRAMS: list[Histogram] = []

#: Gauges computed at scrape time: name -> (help, function of a Redis client).
GAUGES: dict[str, tuple[str, Callable[[Redis], float]]] = {
    "bridge_inbox_depth": (
        "Verified events waiting for a worker.",
        lambda r: float(r.llen(keys.INBOX)),
    ),
    "bridge_queue_depth": (
        "RQ jobs waiting in the bridge queue (drain jobs; a growing number means no worker).",
        lambda r: float(r.llen(f"rq:queue:{keys.QUEUE}")),
    ),
}


def _parse_labels(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


class _RedisCollector(Collector):
    def __init__(self, values: Mapping[str, float], gauges: Mapping[str, float]) -> None:
        self.values = values
        self.gauges = gauges

    def _series(self, counter: Counter) -> Iterable[tuple[dict[str, str], float]]:
        prefix = counter.name + "|"
        for field, value in self.values.items():
            if field.startswith(prefix):
                yield _parse_labels(field[len(prefix) :]), value

    def collect(self) -> Iterable[Metric]:
        for counter in COUNTERS:
            family = CounterMetricFamily(
                counter.name.removesuffix("_total"), counter.help, labels=counter.labels
            )
            for labels, value in self._series(counter):
                family.add_metric([labels.get(k, "") for k in counter.labels], value)
            yield family
        for derived, parts in DERIVED.items():
            sums: dict[tuple[str, ...], float] = {}
            for part in parts:
                for labels, value in self._series(part):
                    key = tuple(labels.get(k, "") for k in derived.labels)
                    sums[key] = sums.get(key, 0.0) + value
            family = CounterMetricFamily(
                derived.name.removesuffix("_total"), derived.help, labels=derived.labels
            )
            for key, value in sorted(sums.items()):
                family.add_metric(list(key), value)
            yield family
        for hist in HISTOGRAMS:
            buckets = [(str(b), self.values.get(f"{hist.name}|le={b}", 0.0)) for b in hist.buckets]
            count = self.values.get(f"{hist.name}|count", 0.0)
            buckets.append(("+Inf", count))
            yield HistogramMetricFamily(
                hist.name,
                hist.help,
                buckets=buckets,
                sum_value=self.values.get(f"{hist.name}|sum", 0.0),
            )
        for name, value in self.gauges.items():
            yield GaugeMetricFamily(name, GAUGES[name][0], value=value)


def render(redis: Redis) -> bytes:
    """The Prometheus text exposition of every bridge metric."""
    raw = redis.hgetall(keys.METRICS)
    values = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
    gauges = {name: fn(redis) for name, (_, fn) in GAUGES.items()}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RedisCollector(values, gauges))
    return generate_latest(registry)


# --- delivery (bridge.delivery) -------------------------------------------------------

CALLS_BUFFERED = Counter(
    "bridge_calls_buffered_total", "Segment calls appended to the durable outbox."
)
CALLS_SENT = Counter("bridge_calls_sent_total", "Segment calls the collector accepted (2xx).")
CALLS_RETRIED = Counter(
    "bridge_calls_retried_total",
    "Segment calls in batches that failed with a retryable error and wait to be resent.",
)
CALLS_DEAD_LETTERED = Counter(
    "bridge_calls_dead_lettered_total",
    "Segment calls moved to the dead-letter store, by reason.",
    ("reason",),
)
EVENTS_MAPPED = Counter(
    "bridge_events_mapped_total", "Inbox events turned into calls, by source.", ("source",)
)
EVENTS_DEAD_LETTERED = Counter(
    "bridge_events_dead_lettered_total",
    "Inbox events moved to the dead-letter store (mapping error, unknown source), by reason.",
    ("reason",),
)
BATCH_ATTEMPTS = Counter(
    "bridge_batch_attempts_total", "POST /v1/batch attempts (the flushing observer)."
)
BATCHES_SENT = Counter("bridge_batches_sent_total", "Batches the collector accepted.")
BATCHES_FAILED = Counter(
    "bridge_batches_failed_total",
    "Batch attempts that failed, by outcome (retry or dead_letter) and reason.",
    ("outcome", "reason"),
)
DLQ_REPLAYED = Counter(
    "bridge_dlq_replayed_total", "Dead-letter entries put back for delivery, by kind.", ("kind",)
)
DELIVERY_LATENCY = Histogram(
    "bridge_delivery_latency_seconds",
    "Seconds from intake accepting an event (or the client buffering a call) to the "
    "collector accepting the call.",
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
BATCH_SIZE = Histogram(
    "bridge_batch_calls", "Calls per batch sent.", (1, 10, 50, 100, 250, 500, 1000, 2500)
)

COUNTERS.extend(
    [
        CALLS_BUFFERED,
        CALLS_SENT,
        CALLS_RETRIED,
        CALLS_DEAD_LETTERED,
        EVENTS_MAPPED,
        EVENTS_DEAD_LETTERED,
        BATCH_ATTEMPTS,
        BATCHES_SENT,
        BATCHES_FAILED,
        DLQ_REPLAYED,
    ]
)
HISTOGRAMS.extend([DELIVERY_LATENCY, BATCH_SIZE])
GAUGES.update(
    {
        "bridge_outbox_depth": (
            "Calls waiting in the durable outbox to be batched.",
            lambda r: float(r.llen(keys.OUTBOX)),
        ),
        "bridge_batches_pending": (
            "Batches in flight or waiting for a retry.",
            lambda r: float(r.zcard(keys.BATCHES_DUE)),
        ),
        "bridge_dlq_depth": (
            "Entries in the dead-letter store.",
            lambda r: float(r.zcard(keys.DLQ_INDEX)),
        ),
    }
)


def observe_many(pipe: Any, histogram: Histogram, values: Iterable[float]) -> None:
    """Queue on ``pipe`` the increments that observing every value adds (one field
    each, however many values): for a whole batch's latencies in one round trip."""
    total = 0.0
    count = 0
    buckets = dict.fromkeys(histogram.buckets, 0)
    for value in values:
        total += value
        count += 1
        for b in histogram.buckets:
            if value <= b:
                buckets[b] += 1
    if not count:
        return
    pipe.hincrbyfloat(keys.METRICS, f"{histogram.name}|sum", total)
    pipe.hincrbyfloat(keys.METRICS, f"{histogram.name}|count", count)
    for b, n in buckets.items():
        if n:
            pipe.hincrbyfloat(keys.METRICS, f"{histogram.name}|le={b}", n)


# --- backfill and reconcile (bridge.backfill, bridge.reconcile) ------------------------

BACKFILL_EVENTS = Counter(
    "bridge_backfill_events_total",
    "Events a backfill fed through intake's dedup, by source and outcome (new, duplicate).",
    ("source", "outcome"),
)
RECONCILED_EVENTS = Counter(
    "bridge_reconciled_events_total",
    "Events the reconcile job found in the provider's API that intake never received "
    "(the webhook path missed them; alert when this grows).",
    ("source",),
)
RECONCILE_SEEN = Counter(
    "bridge_reconcile_seen_total",
    "Events the reconcile job listed that intake already had.",
    ("source",),
)
RECONCILE_UNDELIVERED = Counter(
    "bridge_reconcile_undelivered_total",
    "Events the provider reports it failed to deliver to a webhook endpoint, first sighting.",
    ("source",),
)
RECONCILE_FAILURES = Counter(
    "bridge_reconcile_failures_total",
    "Reconcile runs that could not list events (API down, bad key), by source.",
    ("source",),
)
COUNTERS.extend(
    [BACKFILL_EVENTS, RECONCILED_EVENTS, RECONCILE_SEEN, RECONCILE_UNDELIVERED, RECONCILE_FAILURES]
)
