"""A real ``rq worker`` against Redis trouble: an outage under load (Redis stopped and
started again) and a Redis that is full (``maxmemory`` with ``noeviction``).

The promise (BRIEF: nothing lost, no event blocks another): the worker process stays
up through all of it and resumes by itself; every accepted event is delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import OutOfMemoryError

from bridge import keys
from bridge.devtools.collector import Collector
from bridge.devtools.redis_server import RedisServer
from tests.delivery import support
from tests.delivery.support import Worker, accept, message_id, wait_until

pytestmark = pytest.mark.e2e

StartWorker = Callable[[dict[str, str]], Worker]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server this test may stop, restart and fill."""
    s = RedisServer(tmp_path / "redis").start()
    yield s
    s.stop()


def expected(ids: range) -> set[str]:
    return {message_id(i) for i in ids}


def noticed(worker: Worker) -> bool:
    """The worker logged a Redis error (RQ's own line, or one of bridge's), or died."""
    return worker.process.poll() is not None or any(
        line.get("level") in ("error", "warning") for line in worker.logs()
    )


def fill(client: Redis) -> int:
    """Make Redis full: write until it refuses (maxmemory just above what it held), then
    lower maxmemory below what it holds, so that it stays full whatever else is freed
    (its AOF buffer is not counted, which leaves a margin of a few writes)."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 300_000)
    for n in range(10_000):  # bounded: 10 MB at most
        try:
            client.set(f"fill:{n}", b"x" * 1000)
        except OutOfMemoryError:
            client.config_set("maxmemory", used // 2)
            return n
    raise AssertionError("Redis never said it was full")


def free(client: Redis, n: int) -> None:
    client.delete(*(f"fill:{i}" for i in range(n)))
    client.config_set("maxmemory", 0)


def test_a_worker_rides_out_a_redis_outage_under_load(
    server: RedisServer,
    collector: Collector,
    workers: StartWorker,
) -> None:
    client = Redis.from_url(server.url)
    worker = workers(support.env(server.url, collector.url, BRIDGE_FLUSH_AT="20"))
    # A collector slow enough that the worker is mid-job when Redis goes away.
    collector.on_batch = lambda calls: time.sleep(0.02)
    accept(client, range(1500))
    wait_until(lambda: collector.requests >= 3, timeout=20, what="the first batches")
    server.stop()
    wait_until(lambda: noticed(worker), timeout=15, what="the worker to notice the outage")
    assert worker.process.poll() is None, "the worker exited during the outage"
    server.start()
    assert collector.wait_for_ids(expected(range(1500)), timeout=60)
    assert worker.process.poll() is None
    # One stream of JSON lines: RQ's own messages ("could not connect...") included.
    lines = worker.log.read_bytes().splitlines()
    assert [line for line in lines if line.strip() and not line.startswith(b"{")] == []
    assert any(line.get("logger") == "rq.worker" for line in worker.logs())


def restarting(worker: Worker) -> bool:
    """The worker waits for Redis (or died): RQ's loop quit on a Redis error and bridge
    waits to run it again, or RQ's own dequeue is retrying the connection. Which of the
    two depends on the command Redis failed under, so either counts."""
    return worker.process.poll() is not None or any(
        line.get("event") == "worker_restarting"
        or "could not connect to Redis" in str(line.get("event"))
        for line in worker.logs()
    )


def test_a_running_worker_rides_out_a_full_redis(
    server: RedisServer,
    collector: Collector,
    workers: StartWorker,
) -> None:
    client = Redis.from_url(server.url)
    worker = workers(support.env(server.url, collector.url))
    accept(client, range(20))
    assert collector.wait_for_ids(expected(range(20)), timeout=20)
    filled = fill(client)
    wait_until(lambda: restarting(worker), timeout=20, what="the worker to meet the full Redis")
    assert worker.process.poll() is None, "the worker exited when Redis was full"
    free(client, filled)
    accept(client, range(20, 40))
    assert collector.wait_for_ids(expected(range(40)), timeout=30)
    assert worker.process.poll() is None


def test_a_redis_full_of_undelivered_batches_frees_itself_once_the_collector_is_back(
    server: RedisServer,
    collector: Collector,
    workers: StartWorker,
) -> None:
    # The wedge: the collector is down, batches pile up until Redis is full; Redis then
    # refuses the writes that lease a batch, so nothing could be sent to free it.
    client = Redis.from_url(server.url)
    collector.fail(503)
    worker = workers(support.env(server.url, collector.url, BRIDGE_FLUSH_AT="20"))
    accept(client, range(200))
    wait_until(
        lambda: (
            client.llen(keys.INBOX) + client.llen(keys.OUTBOX) == 0
            and client.zcard(keys.BATCHES_DUE) == 10
        ),
        timeout=30,
        what="every call cut into a batch that waits for a retry",
    )
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
    with pytest.raises(OutOfMemoryError):
        client.set("probe", "x")  # full: no write is taken
    collector.recover()
    assert collector.wait_for_ids(expected(range(200)), timeout=60)
    wait_until(lambda: client.zcard(keys.BATCHES_DUE) == 0, timeout=15, what="every batch acked")
    assert worker.process.poll() is None


def test_sigterm_stops_a_worker_that_waits_for_redis(
    server: RedisServer,
    collector: Collector,
    workers: StartWorker,
) -> None:
    worker = workers(support.env(server.url, collector.url))
    wait_until(lambda: Redis.from_url(server.url).keys("rq:worker:*"), 20, what="registered")
    server.stop()
    wait_until(lambda: restarting(worker), timeout=20, what="the worker to wait for Redis")
    worker.terminate(timeout=15)  # raises if it does not exit: Docker would SIGKILL it
    assert worker.process.returncode == 0
