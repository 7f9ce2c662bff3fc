"""The promises against real ``rq worker`` processes, a real Redis and the local collector.

Every test checks what a user would: each mapped call arrived at least once and the set
of distinct messageIds is exactly the expected set.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis

from bridge import keys
from bridge.devtools.collector import Collector
from bridge.devtools.redis_server import RedisServer
from tests.delivery import support
from tests.delivery.support import VENV_BIN, Worker, accept, message_id, push_unkicked, wait_until

pytestmark = pytest.mark.e2e

StartWorker = Callable[[dict[str, str]], Worker]


def expected(ids: range | list[int]) -> set[str]:
    return {message_id(i) for i in ids}


def delivered(collector: Collector, ids: set[str], timeout: float) -> None:
    assert collector.wait_for_ids(ids, timeout=timeout), (
        f"missing {len(ids - set(collector.message_ids()))} of {len(ids)}"
    )
    assert set(collector.message_ids()) == ids


def test_batching_is_real_at_default_settings(
    redis: Redis, redis_url: str, collector: Collector, workers: StartWorker
) -> None:
    environ = support.env(redis_url, collector.url)
    del environ["BRIDGE_FLUSH_INTERVAL"]  # the shipped defaults decide the batches
    workers(environ)
    workers(environ)
    accept(redis, range(3000))
    delivered(collector, expected(range(3000)), timeout=60)
    assert collector.requests <= 3000 / 100
    assert len(collector.message_ids()) == 3000  # and nothing was sent twice


def test_an_event_whose_drain_job_was_never_enqueued_is_still_delivered(
    redis: Redis, redis_url: str, collector: Collector, workers: StartWorker
) -> None:
    workers(support.env(redis_url, collector.url))
    push_unkicked(redis, range(50))  # the web process died before enqueueing
    delivered(collector, expected(range(50)), timeout=15)


def test_a_worker_sigkilled_mid_batch_loses_nothing(
    redis: Redis, redis_url: str, collector: Collector, workers: StartWorker
) -> None:
    environ = support.env(redis_url, collector.url)
    collector.hang(30)  # hold the first request so the worker is surely mid-batch
    first = workers(environ)
    accept(redis, range(400))
    wait_until(lambda: collector.requests >= 1, timeout=15)
    first.kill()
    collector.recover()
    workers(environ)
    delivered(collector, expected(range(400)), timeout=30)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda c: c.fail(503), id="5xx"),
        pytest.param(lambda c: c.fail(429, retry_after=1), id="429-retry-after"),
        pytest.param(lambda c: c.hang(3), id="hang"),
        pytest.param(lambda c: c.drop(), id="dropped-connection"),
    ],
)
def test_a_failing_collector_loses_nothing_once_it_recovers(
    redis: Redis,
    redis_url: str,
    collector: Collector,
    workers: StartWorker,
    failure: Callable[[Collector], None],
) -> None:
    failure(collector)
    workers(support.env(redis_url, collector.url, BRIDGE_FLUSH_AT="50"))
    accept(redis, range(300))
    wait_until(lambda: collector.refused_requests >= 3, timeout=20)
    assert collector.calls == []
    assert redis.zcard(keys.BATCHES_DUE) >= 1  # waiting to be retried, durably
    collector.recover()
    delivered(collector, expected(range(300)), timeout=30)


def test_a_redis_restart_loses_nothing(
    tmp_path: Path, collector: Collector, workers: StartWorker
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = Redis.from_url(server.url)
        collector.fail(503)
        workers(support.env(server.url, collector.url, BRIDGE_FLUSH_AT="50"))
        accept(client, range(200))
        wait_until(lambda: client.zcard(keys.BATCHES_DUE) >= 1, timeout=15)
        accept(client, range(200, 300))  # some still in the inbox or outbox
        server.restart()
        collector.recover()
        accept(client, range(300, 350))
        delivered(collector, expected(range(350)), timeout=40)
    finally:
        server.stop()


def test_sigterm_stops_quickly_and_hands_back_the_rest(
    redis: Redis, redis_url: str, collector: Collector, workers: StartWorker
) -> None:
    environ = support.env(
        redis_url, collector.url, BRIDGE_DRAIN_BUDGET="5", BRIDGE_DRAIN_CHUNK="20"
    )
    first = workers(environ)
    accept(redis, range(4000))
    wait_until(lambda: collector.requests >= 1, timeout=20)
    assert first.terminate(timeout=15) < 10  # within Docker's default grace
    workers(environ)
    delivered(collector, expected(range(4000)), timeout=60)


def test_a_refused_batch_is_dead_lettered_and_replay_delivers_it(
    redis: Redis, redis_url: str, collector: Collector, workers: StartWorker
) -> None:
    environ = support.env(redis_url, collector.url)
    collector.fail(403, times=1)  # a refusal of every call (say, a revoked key), once
    workers(environ)
    accept(redis, range(20))
    wait_until(lambda: redis.zcard(keys.DLQ_INDEX), timeout=15)
    assert collector.calls == []
    listing = subprocess.run(
        [str(VENV_BIN / "bridge"), "dlq", "list"],
        env={**environ, "PATH": str(VENV_BIN)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rejected: collector answered http_403" in listing.stdout
    subprocess.run(
        [str(VENV_BIN / "bridge"), "dlq", "replay", "--all"],
        env={**environ, "PATH": str(VENV_BIN)},
        capture_output=True,
        check=True,
    )
    delivered(collector, expected(range(20)), timeout=15)
    assert redis.zcard(keys.DLQ_INDEX) == 0
