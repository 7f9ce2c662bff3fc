from __future__ import annotations

import contextlib
from collections.abc import Callable

from redis import Redis

from bridge import keys, metrics
from bridge.collector import Collector
from bridge.delivery import jobs
from bridge.delivery.outbox import MAX_CALL_BYTES
from bridge.delivery.runtime import STOPPING, Runtime
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
