"""Nothing accepted is lost: the webhook fault tests, for calls collected at /v1/batch.

Calls go through real gunicorn into Redis (200 only once durable), then real rq workers
deliver them to the local collector while it fails, while a worker is SIGKILLed
mid-batch, and across a Redis restart. Every test checks what a user would: the set of
distinct messageIds delivered is exactly the set the client sent.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis import Redis

from bridge import keys
from bridge.devtools.collector import Collector
from bridge.devtools.redis_server import RedisServer
from tests.conftest import ROOT
from tests.delivery import support
from tests.delivery.support import Worker, wait_until
from tests.processes import gunicorn

pytestmark = pytest.mark.e2e

KEY = "wk_faults"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}

StartWorker = Callable[[dict[str, str]], Worker]


def env(redis_url: str, collector: Collector, **extra: str) -> dict[str, str]:
    return support.env(redis_url, collector.url, ROOT / "mappings", BRIDGE_WRITE_KEYS=KEY, **extra)


def send(url: str, ids: range) -> set[str]:
    """POST calls ``ids`` in batches of 50; every answer must be 200."""
    sent: set[str] = set()
    with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
        for start in range(ids.start, ids.stop, 50):
            batch = [
                {"type": "track", "userId": f"u{i}", "event": "Clicked", "messageId": f"m-{i}"}
                for i in range(start, min(start + 50, ids.stop))
            ]
            resp = http.post("/v1/batch", json={"batch": batch})
            assert resp.status_code == 200, resp.text
            sent.update(c["messageId"] for c in batch)
    return sent


def delivered(collector: Collector, ids: set[str], timeout: float) -> None:
    assert collector.wait_for_ids(ids, timeout=timeout), (
        f"missing {len(ids - set(collector.message_ids()))} of {len(ids)}"
    )
    assert set(collector.message_ids()) == ids


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda c: c.fail(503), id="5xx"),
        pytest.param(lambda c: c.fail(429, retry_after=1), id="429-retry-after"),
        pytest.param(lambda c: c.hang(3), id="hang"),
        pytest.param(lambda c: c.drop(), id="dropped-connection"),
    ],
)
def test_a_failing_collector_loses_no_collected_call(
    redis: Redis,
    redis_url: str,
    collector: Collector,
    workers: StartWorker,
    failure: Callable[[Collector], None],
) -> None:
    failure(collector)
    environ = env(redis_url, collector, BRIDGE_FLUSH_AT="50")
    workers(environ)
    with gunicorn(environ, workers=1) as url:
        sent = send(url, range(300))
    wait_until(lambda: collector.refused_requests >= 3, timeout=20)
    assert collector.calls == []
    assert redis.zcard(keys.BATCHES_DUE) >= 1  # waiting to be retried, durably
    collector.recover()
    delivered(collector, sent, timeout=30)


def test_a_worker_sigkilled_mid_batch_loses_no_collected_call(
    redis: Redis, redis_url: str, collector: Collector, workers: StartWorker
) -> None:
    environ = env(redis_url, collector)
    collector.hang(30)  # hold the first request so the worker is surely mid-batch
    first = workers(environ)
    with gunicorn(environ, workers=1) as url:
        sent = send(url, range(400))
    wait_until(lambda: collector.requests >= 1, timeout=15)
    first.kill()
    collector.recover()
    workers(environ)
    delivered(collector, sent, timeout=30)


def test_a_redis_restart_loses_no_collected_call(
    tmp_path: Path, collector: Collector, workers: StartWorker
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = Redis.from_url(server.url)
        collector.fail(503)
        environ = env(server.url, collector, BRIDGE_FLUSH_AT="50")
        workers(environ)
        with gunicorn(environ, workers=1) as url:
            sent = send(url, range(200))
            wait_until(lambda: client.zcard(keys.BATCHES_DUE) >= 1, timeout=15)
            server.restart()
            collector.recover()
            sent |= send(url, range(200, 250))
        delivered(collector, sent, timeout=40)
    finally:
        server.stop()
