"""A collector that misbehaves in the ways that once broke delivery, against a real
``rq worker``: it trickles its answer, redirects, or says ``Retry-After: 0``.

Whatever it does, nothing is lost or dead-lettered, and once it behaves every call
arrives. (Unit tests in tests/delivery pin the mechanisms: the POST deadline, the
redirect reason, the retry floor.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis import Redis

from bridge import keys
from bridge.devtools.collector import Collector
from tests.delivery import support
from tests.delivery.support import Worker, accept, message_id, wait_until

pytestmark = pytest.mark.e2e

StartWorker = Callable[[dict[str, str]], Worker]


@pytest.mark.parametrize(
    "misbehave",
    [
        # ~5 s per answer, a byte every 0.05 s: each read is quick, the POST is not.
        pytest.param(lambda c: c.trickle(0.05), id="trickle"),
        pytest.param(lambda c: c.redirect("https://moved.example.invalid/v1/batch"), id="301"),
        pytest.param(lambda c: c.redirect("/v2/batch", status=308), id="308"),
        pytest.param(lambda c: c.fail(429, retry_after=0), id="retry-after-0"),
        pytest.param(lambda c: c.fail(503, retry_after=0), id="503-retry-after-0"),
    ],
)
def test_a_misbehaving_collector_loses_nothing_and_dead_letters_nothing(
    redis: Redis,
    redis_url: str,
    collector: Collector,
    workers: StartWorker,
    misbehave: Callable[[Collector], None],
) -> None:
    misbehave(collector)
    worker = workers(support.env(redis_url, collector.url, BRIDGE_FLUSH_AT="50"))
    accept(redis, range(100))
    wait_until(lambda: collector.refused_requests >= 2, timeout=20, what="two refused POSTs")
    assert collector.calls == []
    assert redis.zcard(keys.DLQ_INDEX) == 0  # a collector problem is never the calls' fault
    assert redis.zcard(keys.BATCHES_DUE) >= 1  # waiting for a retry, durably
    collector.recover()
    assert collector.wait_for_ids({message_id(i) for i in range(100)}, timeout=30)
    assert redis.zcard(keys.DLQ_INDEX) == 0
    failed = [line for line in worker.logs() if line.get("event") == "batch_failed"]
    assert failed
    assert all(line["outcome"] == "retry" for line in failed)
