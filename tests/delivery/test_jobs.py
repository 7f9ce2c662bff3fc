from __future__ import annotations

import contextlib
import json
import time
from collections import Counter as TypingCounter
from collections.abc import Callable, Sequence

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from bridge import keys, metrics
from bridge.delivery import jobs
from bridge.delivery.deadletter import DeadLetter
from bridge.delivery.outbox import MAX_CALL_BYTES
from bridge.delivery.runtime import STOPPING, Runtime
from bridge.devtools.collector import Collector
from bridge.drain import enqueue_drain
from bridge.envelope import Envelope
from tests.delivery.support import accept, message_id, push_unkicked, wait_until


def test_drain_maps_events_and_delivers_the_calls(runtime: Runtime, collector: Collector) -> None:
    accept(runtime.redis, range(30))
    assert runtime.redis.exists(keys.INBOX_KICK)
    summary = jobs.drain(runtime)
    assert summary["events"] == 30
    assert not runtime.redis.exists(keys.INBOX_KICK)
    # 30 calls are under BRIDGE_FLUSH_AT: they go when the flush interval has passed.
    assert collector.message_ids() == []
    wait_until(lambda: jobs.sweep(runtime)["sent"], timeout=5)
    assert sorted(collector.message_ids()) == sorted(message_id(i) for i in range(30))
    text = metrics.render(runtime.redis).decode()
    assert 'bridge_events_mapped_total{source="shop"} 30.0' in text


def test_unmappable_and_oversized_go_to_the_dead_letter_store(
    runtime: Runtime, collector: Collector
) -> None:
    accept(runtime.redis, [1], user=None)  # mapping error: no user id
    accept(runtime.redis, [2], padding="x" * MAX_CALL_BYTES)  # a call over 32 KB
    accept(runtime.redis, [3])
    runtime.redis.rpush(
        keys.INBOX,
        b'{"source": "nope", "id": "e", "type": "t", "time": 1, "received_at": 1, "body": {}}',
    )
    runtime.redis.rpush(keys.INBOX, b"not json")
    jobs.drain(runtime)
    wait_until(lambda: jobs.sweep(runtime)["sent"], timeout=5)
    assert collector.message_ids() == [message_id(3)]
    reasons = sorted(e.reason.split(":")[0] for e in runtime.dead_letters)
    assert reasons == ["call_too_large", "malformed_envelope", "mapping_error", "unknown_source"]
    big = next(e for e in runtime.dead_letters if e.kind == "calls")
    assert big.calls[0]["messageId"] == message_id(2)
    assert (big.source, big.event_id) == ("shop", "evt_2")


def test_a_spent_budget_hands_over_to_a_follow_up_job(
    make_runtime: Callable[..., Runtime], redis: Redis
) -> None:
    runtime = make_runtime(BRIDGE_DRAIN_CHUNK="5")
    push_unkicked(redis, range(20))
    summary = jobs.drain(runtime, budget=0)
    assert summary["left"] == 20
    assert summary["followup"]
    assert redis.llen("rq:queue:bridge") == 1


def test_stopping_takes_no_more_work(runtime: Runtime, redis: Redis) -> None:
    push_unkicked(redis, range(10))
    STOPPING.set()
    summary = jobs.drain(runtime)
    assert summary["events"] == 0
    assert redis.llen(keys.INBOX) == 10
    assert summary["followup"]


def test_a_crash_mid_chunk_hands_the_events_back(
    runtime: Runtime, redis: Redis, monkeypatch: object
) -> None:
    push_unkicked(redis, range(10))

    def boom(*args: object) -> None:
        raise SystemExit  # what a cold shutdown raises inside the job

    runtime.inbox.complete = boom  # type: ignore[method-assign]
    with contextlib.suppress(SystemExit):
        jobs.drain(runtime)
    assert redis.llen(keys.INBOX) == 10
    assert redis.zcard(keys.INBOX_CLAIMS) == 0


def test_the_sweep_kicks_an_inbox_nobody_kicked_and_recovers(
    runtime: Runtime, redis: Redis
) -> None:
    push_unkicked(redis, range(3))
    summary = jobs.sweep(runtime)
    assert summary["kicked"]
    assert redis.llen("rq:queue:bridge") == 1
    assert not jobs.sweep(runtime)["kicked"]  # the marker holds until the job starts


# --- one event must never stop the others (issue 8, item 1) ---------------------------


def nested(depth: int) -> object:
    """A value ``depth`` lists deep (orjson writes at most 254 levels)."""
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def shop_event(i: int, padding: object) -> bytes:
    """An inbox envelope for order ``i`` whose copied ``padding`` field is ``padding``."""
    body = {
        "id": f"evt_{i}",
        "type": "order.paid",
        "created": 1700000000,
        "data": {
            "object": {"id": f"ord_{i}", "metadata": {"user_id": f"u{i}"}, "padding": padding}
        },
    }
    return Envelope.encode(
        source="shop",
        id=f"evt_{i}",
        type="order.paid",
        time=1700000000.0,
        received_at=time.time(),
        raw=json.dumps(body).encode(),  # the stdlib writes 300 levels; orjson stops at 254
    )


def test_a_call_that_cannot_be_encoded_is_dead_lettered_and_the_rest_flows(
    runtime: Runtime, collector: Collector, redis: Redis
) -> None:
    redis.rpush(keys.INBOX, *(shop_event(i, nested(300) if i == 4 else "") for i in range(10)))
    summary = jobs.drain(runtime)
    assert summary["events"] == 10
    assert redis.llen(keys.INBOX) == 0
    wait_until(lambda: jobs.sweep(runtime)["sent"], timeout=5)
    assert sorted(collector.message_ids()) == sorted(message_id(i) for i in range(10) if i != 4)
    (entry,) = list(runtime.dead_letters)
    assert (entry.kind, entry.source, entry.event_id) == ("event", "shop", "evt_4")
    assert entry.reason.startswith("mapping_error: call cannot be encoded as JSON")


def test_a_failure_of_the_whole_chunk_is_bisected_down_to_the_failing_event(
    runtime: Runtime, collector: Collector, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs.map_events
    tried: list[int] = []

    def chunk_crashes_when_it_holds_evt_13(
        rt: Runtime, events: Sequence[bytes], mapped: TypingCounter[str]
    ) -> tuple[list[bytes], list[DeadLetter]]:
        # A bug outside the per-event handling: it fails every chunk holding the event.
        tried.append(len(events))
        if any(b'"id":"evt_13"' in e for e in events):
            raise RuntimeError("boom")
        return real(rt, events, mapped)

    monkeypatch.setattr(jobs, "map_events", chunk_crashes_when_it_holds_evt_13)
    push_unkicked(redis, range(20))
    summary = jobs.drain(runtime)
    assert summary["events"] == 20
    assert summary["dead_letters"] == 1
    (entry,) = list(runtime.dead_letters)
    assert (entry.source, entry.event_id) == ("shop", "evt_13")
    assert entry.reason == "processing_crash: RuntimeError: boom"
    assert len(tried) <= 2 * 5 + 1  # halving 20 events: about two tries per level
    wait_until(lambda: jobs.sweep(runtime)["sent"], timeout=5)
    assert sorted(collector.message_ids()) == sorted(message_id(i) for i in range(20) if i != 13)
    text = metrics.render(redis).decode()
    assert 'bridge_events_mapped_total{source="shop"} 19.0' in text


def test_a_redis_outage_while_mapping_is_never_a_dead_letter(
    runtime: Runtime, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_unkicked(redis, range(5))

    def outage(*args: object, **kw: object) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(runtime.mapper.identity, "resolve", outage)
    monkeypatch.setattr(runtime.mapper, "map", lambda env, identity=None: outage())
    with pytest.raises(RedisConnectionError):
        jobs.drain(runtime)
    assert len(runtime.dead_letters) == 0
    assert redis.llen(keys.INBOX) == 5  # handed back, in order
    assert redis.zcard(keys.INBOX_CLAIMS) == 0


def test_a_failing_drain_job_backs_off_and_says_so(
    runtime: Runtime, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_unkicked(redis, range(3))

    def complete_fails(*args: object) -> bool:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(runtime.inbox, "complete", complete_fails)
    for n in (1, 2, 3):
        with pytest.raises(RedisConnectionError):
            jobs.drain(runtime)
        assert int(redis.hget(keys.DRAIN_HEALTH, "failures") or 0) == n
        # The kick marker is held for the backoff: no instant re-kick by sweep or intake.
        assert redis.pttl(keys.INBOX_KICK) > 0
        assert not jobs.sweep(runtime)["kicked"]
    accept(redis, [99])  # a new webhook during the backoff enqueues no job either
    assert redis.llen("rq:queue:bridge") == 0
    assert b"Connection reset by peer" in (redis.hget(keys.DRAIN_HEALTH, "error") or b"")
    # The third failure in a row waits 4 s (1 s doubled twice): longer than the first.
    assert 3000 < redis.pttl(keys.INBOX_KICK) <= 4000
    monkeypatch.undo()
    redis.delete(keys.INBOX_KICK)
    jobs.drain(runtime)
    assert not redis.exists(keys.DRAIN_HEALTH)  # one good job ends the streak


def test_drain_jobs_keep_failures_briefly(redis: Redis) -> None:
    job = enqueue_drain(Queue(keys.QUEUE, connection=redis))
    assert job.failure_ttl is not None
    assert job.failure_ttl <= 3600
