"""Reconcile: events intake never got are fed and counted; a real worker schedules it
with RQ's own scheduler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis

from bridge import keys, metrics
from bridge import reconcile as rec
from bridge.catalogue import Catalogue, Source
from bridge.delivery.runtime import Runtime
from bridge.devtools.collector import Collector
from bridge.errors import ProviderApiError
from bridge.intake.store import EventStore
from bridge.settings import Settings
from bridge.stripe_api import StripeApi
from tests.backfill.conftest import corpus, env
from tests.backfill.test_backfill import drain_all, post_webhook
from tests.delivery.support import Worker
from tests.processes import wait_until
from tests.stripe_server import Failure, StripeServer

MISSED_ID = "stripe:in_1SVC87HOQNg4XnOMdHAlqDva:0"


def parts(settings: Settings, redis: Redis) -> tuple[StripeApi, EventStore, Source]:
    source = Catalogue.from_settings(settings).get("stripe")
    assert source is not None
    api = StripeApi.from_settings(settings, sleep=lambda _: None, attempts=2)
    return api, EventStore(redis, settings.dedup_ttl), source


def count(redis: Redis, counter: metrics.Counter) -> int:
    return int(redis.hget(keys.METRICS, counter.field(source="stripe")) or 0)


def test_reconcile_feeds_what_intake_never_got_and_counts_it(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    redis: Redis,
    collector: Collector,
    now: int,
) -> None:
    # Lookback 1 h, grace 5 min.
    settings = make_settings(BRIDGE_RECONCILE_LOOKBACK="3600", BRIDGE_RECONCILE_GRACE="300")
    received = corpus("co_payment_paid_userid_2022", created=now - 1800)
    missed = corpus("inv_paid_basil_subscription_create", created=now - 1200)
    too_young = corpus("inv_payment_failed_2025", created=now - 60)  # its webhook may come
    too_old = corpus("cus_created_with_user_id_derived", created=now - 7200)  # not this run
    for event in (received, missed, too_young, too_old):
        stripe_api.add_event(event)
    assert post_webhook(settings, received)["status"] == "accepted"

    api, store, source = parts(settings, redis)
    result = rec.reconcile(api, store, source, settings, now=now)
    assert result.reconciled == ["evt_corpus_inv_basil_paid"]
    assert (result.listed, result.seen) == (2, 1)
    (request, _) = stripe_api.list_requests()
    assert request.param("created[gte]") == str(now - 3600)
    assert request.param("created[lte]") == str(now - 300)
    assert count(redis, metrics.RECONCILED_EVENTS) == 1
    assert b'bridge_reconciled_events_total{source="stripe"} 1.0' in metrics.render(redis)

    drain_all(runtime)
    assert sorted(collector.message_ids()) == sorted(
        ["stripe:pi_3MDCMbJzvcwj3o2q009QLB2A:0", MISSED_ID]
    )
    # Stripe's late retry of the missed event is a duplicate; a second run finds nothing.
    assert post_webhook(settings, missed)["status"] == "duplicate"
    again = rec.reconcile(api, store, source, settings, now=now + 60)
    assert again.reconciled == []
    assert count(redis, metrics.RECONCILED_EVENTS) == 1
    drain_all(runtime)
    assert collector.message_ids().count(MISSED_ID) == 1


def test_undelivered_events_are_listed_and_counted_once(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, redis: Redis, now: int
) -> None:
    settings = make_settings(BRIDGE_RECONCILE_GRACE="0")
    failed = corpus("inv_payment_failed_2025", created=now - 600, _delivery_success=False)
    stripe_api.add_event(failed)
    stripe_api.add_event(corpus("co_payment_paid_userid_2022", created=now - 500))
    api, store, source = parts(settings, redis)
    first = rec.reconcile(api, store, source, settings, now=now)
    second = rec.reconcile(api, store, source, settings, now=now + 10)
    assert first.undelivered == second.undelivered == ["evt_corpus_inv_failed"]
    assert (first.undelivered_new, second.undelivered_new) == (1, 0)
    assert count(redis, metrics.RECONCILE_UNDELIVERED) == 1
    assert rec.undelivered(redis, "stripe") == [("evt_corpus_inv_failed", float(now - 600))]
    flagged = [r for r in stripe_api.list_requests() if r.param("delivery_success")]
    assert [r.param("delivery_success") for r in flagged] == ["false", "false"]


def test_after_failed_runs_the_next_catches_up(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, redis: Redis, now: int
) -> None:
    settings = make_settings(BRIDGE_RECONCILE_LOOKBACK="3600", BRIDGE_RECONCILE_GRACE="300")
    api, store, source = parts(settings, redis)
    t0 = now - 5 * 3600
    rec.reconcile(api, store, source, settings, now=t0)  # ok: last = t0 - 300
    # An event created while Stripe's API answered 500 to every run.
    stripe_api.add_event(corpus("inv_paid_basil_subscription_create", created=t0 + 1800))
    stripe_api.fail_next(Failure(500), Failure(500))
    with pytest.raises(ProviderApiError):
        rec.reconcile(api, store, source, settings, now=t0 + 3600)
    # Four hours later the lookback alone (1 h) would not reach it; the catch-up does.
    result = rec.reconcile(api, store, source, settings, now=t0 + 4 * 3600)
    assert result.since == t0 - 600
    assert result.reconciled == ["evt_corpus_inv_basil_paid"]


def test_a_real_worker_schedules_reconcile_with_rqs_scheduler(
    redis: Redis,
    redis_url: str,
    stripe_api: StripeServer,
    collector: Collector,
    tmp_path: Path,
    now: int,
) -> None:
    """No webhook at all: the worker's reconcile, scheduled by RQ, delivers the event."""
    stripe_api.add_event(corpus("inv_paid_basil_subscription_create", created=now - 600))
    environ = env(
        redis_url,
        stripe_api.url,
        collector.url,
        BRIDGE_RECONCILE_INTERVAL="1",
        BRIDGE_RECONCILE_GRACE="0",
        BRIDGE_WORKER_TICK="0.1",
    )
    worker = Worker(environ, tmp_path / "worker.log")
    try:
        assert collector.wait_for_ids({MISSED_ID}, timeout=40), worker.log.read_text()[-3000:]
        # It went through RQ's scheduled registry under its fixed job id.
        assert redis.exists("rq:job:bridge-reconcile-stripe")
        wait_until(lambda: count(redis, metrics.RECONCILED_EVENTS) == 1, timeout=10)
        lines = [r for r in worker.logs() if r.get("event") == "reconciled_event"]
        assert [r["event_id"] for r in lines] == ["evt_corpus_inv_basil_paid"]
    finally:
        worker.stop()
    assert collector.message_ids().count(MISSED_ID) == 1


def test_a_stopping_worker_ends_the_run_early_and_the_next_redoes_it(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, redis: Redis, now: int
) -> None:
    settings = make_settings(BRIDGE_RECONCILE_GRACE="0")
    stripe_api.add_event(corpus("inv_paid_basil_subscription_create", created=now - 600))
    api, store, source = parts(settings, redis)
    stopped = rec.reconcile(api, store, source, settings, now=now, stopping=lambda: True)
    assert stopped.complete is False
    assert stopped.reconciled == []
    assert redis.get(rec.last_key("stripe")) is None  # the window is not marked done
    again = rec.reconcile(api, store, source, settings, now=now + 1)
    assert again.reconciled == ["evt_corpus_inv_basil_paid"]
    assert redis.get(rec.last_key("stripe")) == str(now + 1).encode()


def test_the_worker_loads_reconcile_only_when_it_is_configured() -> None:
    """bridge.reconcile feeds through intake's store, whose package loads Flask: a
    worker without STRIPE_API_KEY must not pay for it."""
    import subprocess
    import sys

    code = (
        "import sys, bridge.delivery.worker as w\n"
        "print('bridge.reconcile' in sys.modules, 'flask' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_ensure_scheduled_keeps_one_job_per_source(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    settings = make_settings(BRIDGE_RECONCILE_INTERVAL="60")
    catalogue = Catalogue.from_settings(settings)
    assert rec.ensure_scheduled(redis, settings, catalogue) == ["stripe"]
    assert rec.ensure_scheduled(redis, settings, catalogue) == []  # timer running
    redis.delete(rec.timer_key("stripe"))
    assert rec.ensure_scheduled(redis, settings, catalogue) == []  # job still scheduled
    registry = ScheduledJobRegistry(queue=Queue("bridge", connection=redis))
    assert registry.get_job_ids() == ["bridge-reconcile-stripe"]
    # Off without a key or with interval 0.
    off = settings.model_copy(update={"stripe_api_key": None})
    redis.delete(rec.timer_key("stripe"))
    assert rec.ensure_scheduled(redis, off, catalogue) == []


def test_grace_longer_than_lookback_is_a_configuration_error() -> None:
    from bridge.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Settings.from_env({"BRIDGE_RECONCILE_LOOKBACK": "600", "BRIDGE_RECONCILE_GRACE": "600"})
    (problem,) = info.value.problems
    assert problem.startswith("BRIDGE_RECONCILE_GRACE:")
    assert "shorter than BRIDGE_RECONCILE_LOOKBACK (600)" in problem
