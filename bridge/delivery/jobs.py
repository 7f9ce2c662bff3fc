"""The RQ job workers run: ``drain_inbox``, and the sweep an idle worker runs.

``drain_inbox`` is enqueued by intake once per burst (see bridge/intake/store.py),
by a worker's sweep when the inbox holds events nobody kicked, and by itself as a
follow-up when its time budget is spent with events left.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job

from bridge import keys, metrics
from bridge.delivery import deadletter, outage
from bridge.delivery.deadletter import DeadLetter
from bridge.delivery.inbox import Claim
from bridge.delivery.outbox import MAX_CALL_BYTES, encode_items
from bridge.delivery.runtime import STOPPING, Runtime, get_runtime
from bridge.drain import enqueue_drain
from bridge.envelope import Envelope
from bridge.errors import MappingError, UnknownSource
from bridge.log import get_logger
from bridge.mappings import BufferedIdentityStore

log = get_logger("bridge.delivery")

#: Batches a drain job sends between two chunks (keeps mapping and sending interleaved).
BATCHES_PER_CHUNK = 8


def kick(redis: Redis) -> bool:
    """Enqueue a drain job unless one is already pending (the intake's marker)."""
    if not redis.set(keys.INBOX_KICK, "1", nx=True, ex=keys.INBOX_KICK_TTL):
        return False
    enqueue_drain(Queue(keys.QUEUE, connection=redis))
    return True


#: Seconds a failed drain job makes the next one wait (doubling per failure in a row,
#: up to :data:`DRAIN_BACKOFF_MAX`), so a failure never becomes a storm of failed jobs.
DRAIN_BACKOFF_BASE = 1.0

#: Longest wait between two drain jobs while they keep failing, seconds.
DRAIN_BACKOFF_MAX = 60.0


def map_events(
    runtime: Runtime, events: Sequence[bytes], mapped: Counter[str]
) -> tuple[list[bytes], list[DeadLetter]]:
    """Outbox items and dead letters for ``events``: whatever goes wrong with one event
    (bad envelope, unknown source, mapping error or crash, a call that cannot be
    encoded) becomes its dead letter. Redis errors propagate."""
    items: list[bytes] = []
    dead: list[DeadLetter] = []
    # One identity write for the whole chunk, made before the caller commits its calls.
    identity = BufferedIdentityStore(runtime.mapper.identity)
    for raw in events:
        try:
            env = Envelope.decode(raw)
        except Exception as exc:
            dead.append(deadletter.event_entry(raw, f"malformed_envelope: {exc}", None, None))
            continue
        try:
            calls = runtime.mapper.map(env, identity)
            # Encoding belongs to the event: a value no JSON encoder writes (an integer
            # of 2**64 or more, nesting deeper than 254) is that event's mapping error.
            ok, too_large = encode_items(calls, env.received_at)
        except RedisError:
            raise  # an outage is not a fact about this event
        except UnknownSource as exc:
            dead.append(deadletter.event_entry(raw, f"unknown_source: {exc}", env.source, env.id))
            continue
        except MappingError as exc:
            dead.append(deadletter.event_entry(raw, f"mapping_error: {exc}", env.source, env.id))
            continue
        except Exception as exc:
            # A bug in a mapping must not make the event loop forever between workers.
            reason = f"mapping_crash: {type(exc).__name__}: {exc}"
            dead.append(deadletter.event_entry(raw, reason, env.source, env.id))
            continue
        if runtime.console is not None:
            runtime.console.mapped(env, calls, raw)
        items.extend(ok)
        mapped[env.source] += 1
        if too_large:
            entry = deadletter.calls_entry(
                too_large, f"call_too_large: over {MAX_CALL_BYTES} bytes as JSON"
            )
            entry.source, entry.event_id = env.source, env.id
            dead.append(entry)
    identity.flush()
    for entry in dead:
        entry.to_json()  # raises now, inside the bisection, if an entry cannot be stored
    return items, dead


def map_claim(
    runtime: Runtime, claim: Claim, mapped: Counter[str]
) -> tuple[list[bytes], list[DeadLetter]]:
    """Outbox items and dead letters for the events of one claim.

    Anything that fails the chunk as a whole, other than Redis being unavailable, is
    narrowed down by halving the chunk until the failing events stand alone: each one is
    dead-lettered with the reason and the rest of the chunk goes on.
    """
    return _bisect(runtime, claim.events, mapped)


def _bisect(
    runtime: Runtime, events: Sequence[bytes], mapped: Counter[str]
) -> tuple[list[bytes], list[DeadLetter]]:
    counted: Counter[str] = Counter()
    try:
        items, dead = map_events(runtime, events, counted)
    except Exception as exc:
        if outage.unavailable(exc):
            raise
        if len(events) == 1:
            reason = f"processing_crash: {type(exc).__name__}: {exc}"
            log.warning("event_dead_lettered", reason=reason[:200])
            return [], [_crash_entry(events[0], reason)]
        half = len(events) // 2
        first = _bisect(runtime, events[:half], mapped)
        second = _bisect(runtime, events[half:], mapped)
        return first[0] + second[0], first[1] + second[1]
    mapped.update(counted)
    return items, dead


def _crash_entry(raw: bytes, reason: str) -> DeadLetter:
    """The dead letter of an event that failed its chunk, with what is known of it."""
    source = event_id = None
    with contextlib.suppress(Exception):
        head = Envelope.decode(raw)
        source, event_id = str(head.source), str(head.id)
    return deadletter.event_entry(raw, reason, source, event_id)


def drain(runtime: Runtime, budget: float | None = None) -> dict[str, Any]:
    """Map inbox events into the outbox until it is empty, the budget is spent or the
    worker is stopping; send batches as they fill. Returns a summary.

    A job that fails (Redis unavailable, or a bug no bisection isolates) hands its
    chunk back, records the failure in :data:`~bridge.keys.DRAIN_HEALTH` and holds the
    kick marker for a backoff, so neither intake nor the sweep enqueues the next job
    before it has passed.
    """
    try:
        summary = _drain(runtime, budget)
    except BaseException as exc:
        if isinstance(exc, Exception):
            _record_failure(runtime.redis, exc)
        raise
    return summary


def _record_failure(redis: Redis, exc: Exception) -> None:
    """Count a failed drain job and hold the next one back (best effort: Redis may be
    the reason it failed)."""
    reason = f"{type(exc).__name__}: {exc}"[:300]
    try:
        failures = int(redis.hincrby(keys.DRAIN_HEALTH, "failures", 1))
        redis.hset(keys.DRAIN_HEALTH, mapping={"at": repr(time.time()), "error": reason})
        delay = min(DRAIN_BACKOFF_MAX, DRAIN_BACKOFF_BASE * 2 ** min(failures - 1, 16))
        # The kick marker, held for the backoff: intake and sweep kick only once it expires.
        redis.set(keys.INBOX_KICK, "backoff", px=max(1, int(delay * 1000)))
    except RedisError:
        failures, delay = -1, DRAIN_BACKOFF_BASE
    log.error("drain_failed", error=reason, failures=failures, retry_in=delay)


def _drain(runtime: Runtime, budget: float | None) -> dict[str, Any]:
    redis = runtime.redis
    settings = runtime.settings
    # From here on a new webhook sets the marker again and kicks another job.
    redis.delete(keys.INBOX_KICK)
    started = time.monotonic()
    deadline = started + (settings.drain_budget if budget is None else budget)
    recovered = runtime.inbox.recover()
    mapped: Counter[str] = Counter()
    events = calls = dead_count = sent = 0
    while not STOPPING.is_set() and time.monotonic() < deadline:
        claim = runtime.inbox.claim(settings.drain_chunk, settings.lease)
        if claim is None:
            break
        try:
            items, dead = map_claim(runtime, claim, mapped)
            done = runtime.inbox.complete(claim, items, dead)
        except BaseException:
            # Hand back now (the lease would do it later); if Redis is what failed, the
            # original error is the one to report.
            with contextlib.suppress(RedisError):
                runtime.inbox.release(claim)
            raise
        if runtime.console is not None:  # what the chunk became, for the operator console
            runtime.console.commit(dead, done)
        events += len(claim.events)
        calls += len(items)
        dead_count += len(dead)
        sent += runtime.flusher.flush(max_batches=BATCHES_PER_CHUNK).sent
    left = len(runtime.inbox)
    followup = bool(left) and kick(redis)
    # The time trigger for what this burst left in a partial batch.
    sent += runtime.flusher.flush(max_seconds=max(0.0, deadline - time.monotonic())).sent
    pipe = redis.pipeline(transaction=False)
    for source, n in mapped.items():
        pipe.hincrby(keys.METRICS, metrics.EVENTS_MAPPED.field(source=source), n)
    pipe.delete(keys.DRAIN_HEALTH)  # a job that works ends a streak of failures
    pipe.execute()
    summary = {
        "events": events,
        "calls": calls,
        "dead_letters": dead_count,
        "sent": sent,
        "recovered": recovered,
        "left": left,
        "followup": followup,
        "stopping": STOPPING.is_set(),
        "seconds": round(time.monotonic() - started, 4),
    }
    job = get_current_job()
    log.info("drain_job", job_id=job.id if job else None, **summary)
    return summary


def drain_inbox() -> dict[str, Any]:
    """RQ job: drain the inbox (see :func:`drain`)."""
    return drain(get_runtime())


def sweep(runtime: Runtime) -> dict[str, Any]:
    """What an idle worker does every BRIDGE_WORKER_TICK: recover expired claims, kick
    an inbox that nobody is draining, and send what is ready (time trigger, retries)."""
    try:
        recovered = runtime.inbox.recover()
        kicked = len(runtime.inbox) > 0 and kick(runtime.redis)
    except RedisError as exc:
        if not outage.out_of_memory(exc):
            raise
        recovered, kicked = 0, False  # Redis is full: only sending batches frees it
    stats = runtime.flusher.flush(max_seconds=runtime.settings.drain_budget)
    return {"recovered": recovered, "kicked": kicked, "sent": stats.sent, "failed": stats.failed}
