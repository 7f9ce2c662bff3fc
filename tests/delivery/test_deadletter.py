"""The dead-letter store and ``bridge dlq``: listed, shown, replayed once fixed, dropped."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from click.testing import CliRunner
from redis import Redis
from rq import Queue

from bridge import keys, metrics
from bridge.cli.dlq import dlq
from bridge.delivery import jobs
from bridge.delivery.runtime import Runtime
from bridge.devtools.collector import Collector
from bridge.drain import FAILURE_TTL
from tests.delivery import support
from tests.delivery.support import accept, message_id, wait_until


@pytest.fixture
def cli(redis_url: str, collector: Collector) -> Callable[..., str]:
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(dlq, list(args), env=support.env(redis_url, collector.url))
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return run


def test_rejected_calls_are_listed_shown_and_replayed_once_fixed(
    runtime: Runtime, collector: Collector, cli: Callable[..., str]
) -> None:
    accept(runtime.redis, range(3))
    collector.poison(message_id(1))  # the collector refuses this call for good
    jobs.drain(runtime)
    wait_until(lambda: jobs.sweep(runtime) and len(runtime.dead_letters), timeout=5)
    [entry_id] = runtime.dead_letters.ids()
    listing = cli("list")
    assert entry_id in listing
    assert "rejected" in listing
    shown = orjson.loads(cli("show", entry_id))
    assert shown["answer"].startswith("400 ")
    assert [c["messageId"] for c in shown["calls"]] == [message_id(1)]
    assert cli("show", "missing", ok=False)
    assert sorted(collector.message_ids()) == [message_id(0), message_id(2)]

    collector.poisoned.clear()  # the fix (in the collector or in the mapping)
    assert "1 replayed" in cli("replay", entry_id)
    # Replaying twice sends once; the second time the id is unknown (exit 1).
    assert cli("replay", entry_id, ok=False).count("no dead-letter entry") == 1
    wait_until(lambda: jobs.sweep(runtime)["sent"], timeout=5)
    assert sorted(collector.message_ids()) == sorted(message_id(i) for i in range(3))
    assert len(runtime.dead_letters) == 0
    text = metrics.render(runtime.redis).decode()
    assert 'bridge_dlq_replayed_total{kind="calls"} 1.0' in text


def test_an_unmappable_event_is_replayed_through_the_fixed_mapping(
    make_runtime: Callable[..., Runtime], collector: Collector, cli: Callable[..., str]
) -> None:
    broken = make_runtime()
    accept(broken.redis, [7], user=None)
    jobs.drain(broken)
    [entry] = list(broken.dead_letters)
    assert entry.kind == "event"
    assert entry.reason.startswith("mapping_error")
    assert (entry.source, entry.event_id) == ("shop", "evt_7")

    fixed = make_runtime(BRIDGE_MAPPINGS_DIR=str(support.MAPPINGS_FIXED))
    cli("replay", "--all")
    assert fixed.redis.llen(keys.INBOX) == 1
    # Kicked the one way every process kicks (bridge/drain.py): a failed drain job is
    # kept FAILURE_TTL seconds for inspection.
    queued = Queue(keys.QUEUE, connection=fixed.redis).get_jobs()
    assert {(job.func_name, job.failure_ttl) for job in queued} == {(keys.DRAIN_JOB, FAILURE_TTL)}
    jobs.drain(fixed)
    wait_until(lambda: jobs.sweep(fixed)["sent"], timeout=5)
    [call] = collector.calls
    assert call["messageId"] == message_id(7)
    assert call["anonymousId"]


def test_drop(runtime: Runtime, redis: Redis, cli: Callable[..., str]) -> None:
    accept(redis, [1, 2], user=None)
    jobs.drain(runtime)
    assert len(runtime.dead_letters) == 2
    assert "2 entries" in cli("list")
    assert cli("list", "--json").count("\n") == 2
    cli("drop", runtime.dead_letters.ids()[0], "--yes")
    assert len(runtime.dead_letters) == 1
    cli("drop", "--all", "--yes")
    assert len(runtime.dead_letters) == 0
    assert cli("replay", ok=False)
