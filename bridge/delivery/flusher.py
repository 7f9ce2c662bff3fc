"""Take ready batches from the outbox, send them, and record what happened.

One attempt is: ``flushing`` -> POST -> one of
  * ``flushed``: ack the batch and count it, in one transaction;
  * ``err`` + retry: the batch stays leased-until-later in ``BATCHES_DUE`` (backoff
    with jitter, or ``Retry-After``). The worker moves on at once: it never sleeps.
  * ``err`` + dead letter: a 4xx other than 408/429 moves the calls to the DLQ.
If the process is interrupted mid-request (SIGTERM cold shutdown), the batch is
handed back for an immediate retry; if it is SIGKILLed, its lease expires instead.

When Redis is full (``maxmemory`` under ``noeviction``) it refuses the writes that
lease or cut a batch, but still serves reads and deletes. Delivering is then the only
way memory frees by itself, so the flusher sends the batches already cut and due
without leasing them, and acknowledges (deletes) each one the collector accepts. Two
workers may send the same such batch: the same bytes and messageIds, which Segment
deduplicates (at least once, never lost). A batch that fails then stays as it was.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from bridge import codec, keys, metrics
from bridge.delivery import deadletter, outage
from bridge.delivery.backoff import backoff_delay
from bridge.delivery.observers import FlushEvent, Observers
from bridge.delivery.outbox import Batch, Outbox
from bridge.delivery.sender import Sender
from bridge.errors import DeliveryError, RejectedDelivery, RetryableDelivery
from bridge.settings import Settings

#: Refusals that may concern only some calls of a batch (invalid call, body too large):
#: the batch is halved and retried. Others (401, 403, 404: wrong key or endpoint) concern
#: every call alike, so the batch goes to the dead-letter store whole.
SPLIT_STATUSES = frozenset({400, 413, 422})


@dataclass
class FlushStats:
    batches: int = 0
    sent: int = 0
    failed: int = 0


class Flusher:
    """Sends batches for one process."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        sender: Sender,
        observers: Observers | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.sender = sender
        self.outbox = Outbox(redis)
        self.observers = observers or Observers()
        self.stopping = stopping
        # A batch must not be taken over while its request can still be running.
        self.lease = max(settings.lease, settings.http_timeout + 5)
        #: Whether the last attempt made while Redis was full failed retryably.
        self._last_retryable = False

    def flush(
        self, *, force: bool = False, max_batches: int = 1000, max_seconds: float = 30.0
    ) -> FlushStats:
        """Send what is ready: due retries and expired leases first, then new batches
        (full ones, the partial one past the flush interval, or anything if ``force``)."""
        stats = FlushStats()
        deadline = time.monotonic() + max_seconds
        kept: set[str] = set()  # batches that failed while Redis was full
        while stats.batches < max_batches and time.monotonic() < deadline and not self.stopping():
            full = False
            try:
                batch = self.outbox.take_due(lease=self.lease) or self.outbox.take(
                    flush_at=self.settings.flush_at,
                    interval=self.settings.flush_interval,
                    lease=self.lease,
                    force=force,
                    batch_id=uuid.uuid4().hex,
                )
            except RedisError as exc:
                if not outage.out_of_memory(exc):
                    raise
                full = True
                batch = self.outbox.peek_due(skip=kept)
            if batch is None:
                break
            stats.batches += 1
            if self.deliver_when_full(batch) if full else self.deliver(batch):
                stats.sent += batch.count
                continue
            stats.failed += batch.count
            if full:
                if batch.id in kept or self._last_retryable:
                    break  # the collector is failing: try again at the next sweep
                kept.add(batch.id)
        return stats

    def deliver_when_full(self, batch: Batch) -> bool:
        """One attempt at a batch that could not be leased because Redis is full: on
        success acknowledge it (deletes, which a full Redis allows); on failure leave
        it as it is (its retry cannot be written)."""
        base: dict[str, Any] = {
            "batch_id": batch.id,
            "calls": batch.count,
            "attempt": batch.attempts,
            "size": len(batch.calls),
        }
        self._last_retryable = False
        try:
            answer = self.sender.send(batch.calls)
        except DeliveryError as exc:
            self._last_retryable = exc.retryable
            reason = str(exc.context.get("reason", "failed"))
            self.observers.emit(
                FlushEvent(
                    "err", error=exc.message, reason=reason, outcome="kept_redis_full", **base
                )
            )
            return False
        self.outbox.ack(batch)
        with contextlib.suppress(RedisError):  # counters are writes: only if Redis takes them
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(keys.METRICS, metrics.CALLS_SENT.field(), batch.count)
            pipe.hincrby(keys.METRICS, metrics.BATCHES_SENT.field(), 1)
            pipe.execute()
        self.observers.emit(
            FlushEvent(
                "flushed",
                status=answer.status,
                elapsed=round(answer.elapsed, 4),
                payload=batch.calls,
                **base,
            )
        )
        return True

    def deliver(self, batch: Batch) -> bool:
        """One attempt at ``batch``; True if the collector accepted it."""
        base: dict[str, Any] = {
            "batch_id": batch.id,
            "calls": batch.count,
            "attempt": batch.attempts,
            "size": len(batch.calls),
        }
        self.redis.hincrby(keys.METRICS, metrics.BATCH_ATTEMPTS.field(), 1)
        self.observers.emit(FlushEvent("flushing", **base))
        try:
            answer = self.sender.send(batch.calls)
        except RetryableDelivery as exc:
            delay = backoff_delay(
                batch.attempts,
                base=self.settings.retry_base,
                cap=self.settings.retry_max,
                retry_after=exc.retry_after,
            )

            def retry(pipe: Any) -> None:
                self.outbox.queue_retry_at(pipe, batch, time.time() + delay)
                pipe.hincrby(keys.METRICS, metrics.CALLS_RETRIED.field(), batch.count)

            return self._failed(batch, base, exc, "retry", retry, retry_in=round(delay, 3))
        except RejectedDelivery as exc:
            if batch.count > 1 and exc.context.get("status") in SPLIT_STATUSES:
                # One bad call must not take its batch-mates to the dead-letter store:
                # halve the batch until the refused calls stand alone.
                def split(pipe: Any) -> None:
                    self.outbox.queue_split(pipe, batch, time.time())

                return self._failed(batch, base, exc, "split", split)
            reason = str(exc.context.get("reason", "rejected"))
            entry = deadletter.calls_entry(
                codec.loads(batch.calls), f"rejected: collector answered {reason}", exc.message
            )

            def dead_letter(pipe: Any) -> None:
                self.outbox.queue_ack(pipe, batch)
                deadletter.queue_add(pipe, entry)

            return self._failed(batch, base, exc, "dead_letter", dead_letter)
        except BaseException:
            # Interrupted (cold shutdown, job timeout): hand the batch back now rather
            # than after its lease; the same bytes go out again.
            self.outbox.retry_at(batch, time.time())
            raise
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        self.outbox.queue_ack(pipe, batch)
        pipe.hincrby(keys.METRICS, metrics.CALLS_SENT.field(), batch.count)
        pipe.hincrby(keys.METRICS, metrics.BATCHES_SENT.field(), 1)
        metrics.observe_many(pipe, metrics.DELIVERY_LATENCY, (now - r for r in batch.received))
        metrics.observe_many(pipe, metrics.BATCH_SIZE, (batch.count,))
        pipe.execute()
        self.observers.emit(
            FlushEvent(
                "flushed",
                status=answer.status,
                elapsed=round(answer.elapsed, 4),
                payload=batch.calls,
                **base,
            )
        )
        return True

    def _failed(
        self,
        batch: Batch,
        base: dict[str, Any],
        exc: RetryableDelivery | RejectedDelivery,
        outcome: str,
        record: Callable[[Any], None],
        **extra: Any,
    ) -> bool:
        """Record a failed attempt (``record`` queues what happens to the batch) with its
        counter in one transaction, then tell the ``err`` observers."""
        reason = str(exc.context.get("reason", outcome))
        pipe = self.redis.pipeline(transaction=True)
        record(pipe)
        pipe.hincrby(keys.METRICS, metrics.BATCHES_FAILED.field(outcome=outcome, reason=reason), 1)
        pipe.execute()
        self.observers.emit(
            FlushEvent(
                "err",
                error=exc.message,
                reason=reason,
                outcome=outcome,
                payload=batch.calls,
                **base,
                **extra,
            )
        )
        return False
