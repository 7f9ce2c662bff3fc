from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
import structlog
from redis import Redis

from bridge import keys, metrics
from bridge.delivery.observers import FlushEvent
from bridge.delivery.outbox import encode_items
from bridge.delivery.runtime import Runtime
from bridge.devtools.collector import Collector
from tests.delivery.support import wait_until


def buffer(runtime: Runtime, n: int, prefix: str = "m") -> set[str]:
    calls = [
        {"type": "track", "event": "E", "userId": "u", "messageId": f"{prefix}{i}"}
        for i in range(n)
    ]
    items, _ = encode_items(calls, time.time())
    runtime.outbox.append(items)
    return {str(c["messageId"]) for c in calls}


def counter(redis: Redis, c: metrics.Counter, **labels: str) -> int:
    return int(float(redis.hget(keys.METRICS, c.field(**labels)) or 0))


def test_full_batches_go_partial_ones_wait_for_the_interval(
    make_runtime: Callable[..., Runtime], collector: Collector
) -> None:
    runtime = make_runtime(BRIDGE_FLUSH_AT="10", BRIDGE_FLUSH_INTERVAL="0.3")
    buffer(runtime, 25)
    assert runtime.flusher.flush().sent == 20
    assert collector.requests == 2
    assert runtime.flusher.flush().sent == 0  # 5 left, younger than the interval
    time.sleep(0.35)
    assert runtime.flusher.flush().sent == 5


def test_a_failing_collector_is_retried_without_waiting_in_the_worker(
    runtime: Runtime, collector: Collector
) -> None:
    ids = buffer(runtime, 3)
    collector.fail(503, times=3)
    started = time.monotonic()
    stats = runtime.flusher.flush(force=True)
    assert stats.failed == 3
    assert time.monotonic() - started < 0.5  # no sleeping in the worker
    assert runtime.outbox.pending() == 1

    def sent() -> bool:
        runtime.flusher.flush()
        return set(collector.message_ids()) == ids

    wait_until(sent, timeout=10)
    assert runtime.outbox.pending() == 0
    assert counter(runtime.redis, metrics.CALLS_RETRIED) == 9
    assert counter(runtime.redis, metrics.CALLS_SENT) == 3


def test_retry_after_is_honoured(runtime: Runtime, collector: Collector) -> None:
    buffer(runtime, 1)
    collector.fail(429, retry_after=1, times=1)
    runtime.flusher.flush(force=True)
    due = runtime.outbox.next_due()
    assert due is not None
    assert due - time.time() > 0.8
    runtime.flusher.flush()
    assert collector.calls == []


def test_a_4xx_for_every_call_sends_the_batch_to_the_dead_letter_store_with_the_answer(
    runtime: Runtime, collector: Collector
) -> None:
    ids = buffer(runtime, 4)
    collector.fail(403, times=1)  # e.g. a revoked write key: no call can go
    runtime.flusher.flush(force=True)
    assert runtime.outbox.pending() == 0
    [entry] = list(runtime.dead_letters)
    assert entry.kind == "calls"
    assert {c["messageId"] for c in entry.calls} == ids
    assert entry.answer is not None
    assert entry.answer.startswith("403 ")
    assert "http_403" in entry.reason
    assert counter(runtime.redis, metrics.CALLS_DEAD_LETTERED, reason="rejected") == 4


def test_a_poison_call_is_isolated_and_its_batch_mates_are_delivered(
    make_runtime: Callable[..., Runtime], collector: Collector
) -> None:
    runtime = make_runtime(BRIDGE_FLUSH_AT="16")
    ids = buffer(runtime, 16)
    collector.poison("m5", "m12")
    for _ in range(10):  # bounded: halving 16 calls takes at most 4 levels
        runtime.flusher.flush(force=True)
        if runtime.outbox.pending() == 0:
            break
    assert runtime.outbox.pending() == 0
    assert set(collector.message_ids()) == ids - {"m5", "m12"}
    assert len(collector.message_ids()) == 14  # each delivered once
    entries = list(runtime.dead_letters)
    assert sorted(c["messageId"] for e in entries for c in e.calls) == ["m12", "m5"]
    assert all(len(e.calls) == 1 for e in entries)
    assert all(e.answer is not None and e.answer.startswith("400 ") for e in entries)


def test_observers_see_flushing_flushed_and_err(runtime: Runtime, collector: Collector) -> None:
    seen: list[FlushEvent] = []
    for name in ("flushing", "flushed", "err"):
        runtime.observers.on(name, seen.append)  # type: ignore[arg-type]
    runtime.observers.on("flushed", lambda ev: 1 / 0)  # a broken subscriber changes nothing
    buffer(runtime, 2)
    collector.fail(500, times=1)
    runtime.flusher.flush(force=True)
    wait_until(lambda: runtime.flusher.flush().sent, timeout=5)
    assert [e.event for e in seen] == ["flushing", "err", "flushing", "flushed"]
    assert seen[1].outcome == "retry"
    assert seen[1].reason == "http_500"
    assert seen[3].status == 200
    assert seen[3].attempt == 2
    assert counter(runtime.redis, metrics.BATCH_ATTEMPTS) == 2
    text = metrics.render(runtime.redis).decode()
    assert "bridge_delivery_latency_seconds_count 2.0" in text
    assert "bridge_calls_sent_total 2.0" in text


def test_retry_after_zero_still_waits_the_floor(runtime: Runtime, collector: Collector) -> None:
    buffer(runtime, 3)
    collector.fail(429, retry_after=0)  # "retry now", every time
    before = time.time()
    assert runtime.flusher.flush(force=True).failed == 3
    # The batch is due again no sooner than MIN_RETRY_AFTER (1 s) later, so the next
    # flushes send nothing: no POST storm.
    (due,) = runtime.redis.zrange(keys.BATCHES_DUE, 0, -1, withscores=True)
    assert due[1] >= before + 1.0
    assert runtime.flusher.flush().batches == 0
    assert collector.requests == 1


def test_a_redirect_keeps_the_batch_for_a_retry_with_its_reason(
    runtime: Runtime, collector: Collector
) -> None:
    ids = buffer(runtime, 3)
    collector.redirect("https://api.example.invalid/v1/batch", status=301)
    failed: list[FlushEvent] = []
    runtime.observers.on("err", failed.append)
    runtime.flusher.flush(force=True)
    assert failed[0].outcome == "retry"  # a wrong SEGMENT_ENDPOINT loses nothing
    assert failed[0].error is not None
    assert "redirect to https://api.example.invalid/v1/batch" in failed[0].error
    assert len(runtime.dead_letters) == 0
    assert runtime.outbox.pending() == 1
    collector.recover()  # the endpoint is fixed

    def sent() -> bool:
        runtime.flusher.flush()
        return set(collector.message_ids()) == ids

    wait_until(sent, timeout=10)


def test_log_lines_are_named_as_documented_with_the_batch_size(
    runtime: Runtime, collector: Collector
) -> None:
    buffer(runtime, 2)
    collector.fail(503, times=1)
    # batch_flushing is a debug line: whatever level an earlier test configured, see it.
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            runtime.flusher.flush(force=True)
            wait_until(lambda: runtime.flusher.flush().sent, timeout=10)
    finally:
        structlog.configure(**saved)
    events = {line["event"]: line for line in logs if line["event"].startswith("batch_")}
    assert set(events) == {"batch_flushing", "batch_failed", "batch_flushed"}  # README's names
    # The size of two calls as JSON: '[' + call + ',' + call + ']'.
    calls = [
        orjson.dumps({"type": "track", "event": "E", "userId": "u", "messageId": f"m{i}"})
        for i in range(2)
    ]
    assert events["batch_flushed"]["size"] == len(calls[0]) + len(calls[1]) + 3
    assert events["batch_failed"]["reason"] == "http_503"


def test_when_redis_is_full_due_batches_are_still_sent_and_acked(
    make_runtime: Callable[..., Runtime], collector: Collector, redis: Redis
) -> None:
    runtime = make_runtime(BRIDGE_FLUSH_AT="2")
    buffer(runtime, 4)
    collector.fail(503)
    assert runtime.flusher.flush(force=True).failed == 4  # two batches, waiting to retry
    collector.recover()
    collector.poison("m0")  # one of them is refused for good (400 for a single call)
    wait_until(lambda: runtime.redis.zcount(keys.BATCHES_DUE, "-inf", time.time()) == 2, 5)
    redis.config_set("maxmemory", int(redis.info("memory")["used_memory"]) // 2)
    try:
        stats = runtime.flusher.flush()
    finally:
        redis.config_set("maxmemory", 0)
    # Full: nothing could be leased, split or dead-lettered, yet the good batch went out
    # and was deleted; the refused one is kept as it was, for when Redis has room.
    assert stats.sent == 2
    assert set(collector.message_ids()) == {"m2", "m3"}
    assert runtime.outbox.pending() == 1
    assert len(runtime.dead_letters) == 0
