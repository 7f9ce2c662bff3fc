"""The RQ jobs workers run: ``drain_inbox`` (and ``flush_outbox``).

``drain_inbox`` is enqueued by intake once per burst (see bridge/intake/store.py),
by a worker's sweep when the inbox holds events nobody kicked, and by itself as a
follow-up when its time budget is spent with events left.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from redis import Redis
from rq import Queue, get_current_job

from bridge import keys, metrics
from bridge.delivery import deadletter
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


def map_claim(
    runtime: Runtime, claim: Claim, mapped: Counter[str]
) -> tuple[list[bytes], list[DeadLetter]]:
    """Outbox items and dead letters for the events of one claim."""
    items: list[bytes] = []
    dead: list[DeadLetter] = []
    # One identity write for the whole chunk, made before the caller commits its calls.
    identity = BufferedIdentityStore(runtime.mapper.identity)
    for raw in claim.events:
        try:
            env = Envelope.decode(raw)
        except Exception as exc:
            dead.append(deadletter.event_entry(raw, f"malformed_envelope: {exc}", None, None))
            continue
        try:
            calls = runtime.mapper.map(env, identity)
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
        ok, too_large = encode_items(calls, env.received_at)
        if runtime.console is not None:
            runtime.console.mapped(env, calls)
        items.extend(ok)
        mapped[env.source] += 1
        if too_large:
            entry = deadletter.calls_entry(
                too_large, f"call_too_large: over {MAX_CALL_BYTES} bytes as JSON"
            )
            entry.source, entry.event_id = env.source, env.id
            dead.append(entry)
    identity.flush()
    return items, dead


def drain(runtime: Runtime, budget: float | None = None) -> dict[str, Any]:
    """Map inbox events into the outbox until it is empty, the budget is spent or the
    worker is stopping; send batches as they fill. Returns a summary."""
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
    if mapped:
        pipe = redis.pipeline(transaction=False)
        for source, n in mapped.items():
            pipe.hincrby(keys.METRICS, metrics.EVENTS_MAPPED.field(source=source), n)
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


def flush_outbox() -> dict[str, Any]:
    """RQ job: send whatever is ready now (due retries, full or old batches)."""
    stats = get_runtime().flusher.flush()
    return {"batches": stats.batches, "sent": stats.sent, "failed": stats.failed}


def sweep(runtime: Runtime) -> dict[str, Any]:
    """What an idle worker does every BRIDGE_WORKER_TICK: recover expired claims, kick
    an inbox that nobody is draining, and send what is ready (time trigger, retries)."""
    recovered = runtime.inbox.recover()
    kicked = len(runtime.inbox) > 0 and kick(runtime.redis)
    stats = runtime.flusher.flush(max_seconds=runtime.settings.drain_budget)
    return {"recovered": recovered, "kicked": kicked, "sent": stats.sent, "failed": stats.failed}
