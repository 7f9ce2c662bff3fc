"""Backfill through intake's own dedup, inbox, mapping and outbox (real Redis, real app,
a local Stripe API serving real payloads, the local collector)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from redis import Redis

from bridge import keys, metrics
from bridge.backfill import Backfill, BackfillRefused, Checkpoint, parse_when
from bridge.catalogue import Catalogue
from bridge.delivery import jobs
from bridge.delivery.runtime import Runtime
from bridge.devtools.collector import Collector
from bridge.intake import create_app
from bridge.intake.store import EventStore
from bridge.settings import Settings
from bridge.stripe_api import StripeApi
from tests.backfill.conftest import corpus
from tests.processes import wait_until
from tests.signing import STRIPE_SECRET, stripe_headers
from tests.stripe_server import StripeServer

# Each event and the messageIds its rules give, derived by hand from mappings/stripe.yaml
# (messageId = "<source>:<event id>:<rule>:<index of the call in the rule>").
EVENTS: dict[str, tuple[str, list[str]]] = {
    # payment mode, paid, no invoice: one Order Completed, named by its payment intent.
    "co_payment_paid_userid_2022": (
        "evt_corpus_co_2022",
        ["stripe:pi_3MDCMbJzvcwj3o2q009QLB2A:0"],
    ),
    # amount_paid 2990 > 0: one Order Completed, named by its invoice.
    "inv_paid_basil_subscription_create": (
        "evt_corpus_inv_basil_paid",
        ["stripe:in_1SVC87HOQNg4XnOMdHAlqDva:0"],
    ),
    "inv_payment_failed_2025": (
        "evt_corpus_inv_failed",
        ["stripe:evt_corpus_inv_failed:invoice-payment-failed:0"],
    ),
    "cus_created_with_user_id_derived": (
        "evt_corpus_cus_created_uid",
        ["stripe:evt_corpus_cus_created_uid:customer-identify:0"],
    ),
    "sub_deleted_2022": (
        "evt_1L08lbJ01yyFZ0ZArCpdB6c1",
        ["stripe:evt_1L08lbJ01yyFZ0ZArCpdB6c1:subscription-deleted:0"],
    ),
    # payment_intent.succeeded is handled (its links are remembered), but this 2020
    # intent's status is requires_payment_method with nothing received: no call.
    "payment_intent_succeeded_2020_unmapped": ("evt_1IlYUUJDPojXS6LN7NEWYSm2", []),
}


def seed(server: StripeServer, now: int) -> dict[str, dict[str, Any]]:
    """Every EVENTS payload, created one hour apart within the last day (newest first
    in EVENTS order)."""
    out = {}
    for i, name in enumerate(EVENTS):
        event = corpus(name, created=now - 3600 * (i + 1))
        server.add_event(event)
        out[name] = event
    return out


def post_webhook(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    app = create_app(settings)
    raw = orjson.dumps(event)
    with app.test_client() as client:
        resp = client.post("/webhooks/stripe", data=raw, headers=stripe_headers(raw, STRIPE_SECRET))
    assert resp.status_code == 200, resp.data
    body: dict[str, Any] = resp.get_json()
    return body


def make_backfill(settings: Settings, redis: Redis, **kw: Any) -> Backfill:
    source = Catalogue.from_settings(settings).get("stripe")
    assert source is not None
    api = StripeApi.from_settings(settings, sleep=lambda _: None)
    return Backfill(api, EventStore(redis, settings.dedup_ttl), source, redis, **kw)


def drain_all(runtime: Runtime) -> None:
    """Map everything in the inbox and send it (the flush interval is 0.2 s here)."""
    jobs.drain(runtime, budget=5)

    def sent() -> bool:
        runtime.flusher.flush()
        redis = runtime.redis
        return not (
            redis.llen(keys.INBOX) or redis.llen(keys.OUTBOX) or redis.zcard(keys.BATCHES_DUE)
        )

    wait_until(sent, timeout=10, what="inbox and outbox empty")


def counter(redis: Redis, c: metrics.Counter, **labels: str) -> int:
    return int(redis.hget(keys.METRICS, c.field(**labels)) or 0)


def test_backfill_after_an_outage_delivers_exactly_the_missing_events(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    redis: Redis,
    collector: Collector,
    now: int,
) -> None:
    settings = make_settings()
    events = seed(stripe_api, now)
    # Before the "outage" two webhooks arrived.
    received = ["co_payment_paid_userid_2022", "inv_payment_failed_2025"]
    for name in received:
        assert post_webhook(settings, events[name])["status"] == "accepted"
    drain_all(runtime)
    assert sorted(collector.message_ids()) == sorted(
        m for name in received for m in EVENTS[name][1]
    )

    checkpoint = make_backfill(settings, redis).run(
        make_backfill(settings, redis).plan(
            since=now - 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
        )
    )
    c = checkpoint.counts
    assert (c.listed, c.new, c.duplicates, c.ignored) == (6, 4, 2, 0)
    assert checkpoint.done
    drain_all(runtime)

    everything = [m for _, ids in EVENTS.values() for m in ids]
    ids = collector.message_ids()
    assert sorted(ids) == sorted(everything)  # each exactly once: nothing doubled
    assert counter(redis, metrics.BACKFILL_EVENTS, source="stripe", outcome="new") == 4
    assert counter(redis, metrics.BACKFILL_EVENTS, source="stripe", outcome="duplicate") == 2
    # Backfilled events do not count as webhooks.
    assert counter(redis, metrics.WEBHOOKS_ACCEPTED, source="stripe") == 2

    # A second backfill over the same window finds nothing new.
    again = make_backfill(settings, redis)
    c2 = again.run(
        again.plan(
            since=now - 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
        )
    ).counts
    assert (c2.new, c2.duplicates, c2.ignored) == (0, 6, 0)
    drain_all(runtime)
    assert sorted(collector.message_ids()) == sorted(everything)


def test_backfilled_call_equals_the_webhooks_call(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    redis: Redis,
    collector: Collector,
    now: int,
) -> None:
    """The same event by webhook (one Redis) and by backfill (flushed Redis) maps to
    the very same call: same path, same mapping."""
    settings = make_settings()
    event = corpus("co_payment_paid_userid_2022", created=now - 600)
    stripe_api.add_event(event)
    post_webhook(settings, event)
    drain_all(runtime)
    (by_webhook,) = collector.calls
    collector.reset()
    redis.flushdb()
    job = make_backfill(settings, redis)
    job.run(
        job.plan(since=now - 3600, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl)
    )
    drain_all(runtime)
    (by_backfill,) = collector.calls
    for call in (by_webhook, by_backfill):
        call.pop("sentAt", None)
    assert by_backfill == by_webhook
    assert by_backfill["messageId"] == "stripe:pi_3MDCMbJzvcwj3o2q009QLB2A:0"
    assert by_backfill["properties"]["order_id"] == event["data"]["object"]["payment_intent"]


def test_interrupted_backfill_resumes_from_its_checkpoint(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, redis: Redis, now: int
) -> None:
    settings = make_settings()
    seed(stripe_api, now)
    newest_first = [eid for eid, _ in EVENTS.values()]
    job = make_backfill(settings, redis, page_size=2)
    plan = job.plan(
        since=now - 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
    )
    first = job.run(plan, max_pages=2)
    assert not first.done
    assert first.cursor == newest_first[3]
    assert first.counts.listed == 4
    saved = Checkpoint.load(redis, "stripe")
    assert saved is not None
    assert saved.cursor == newest_first[3]

    # A new run is refused while one is unfinished.
    with pytest.raises(BackfillRefused, match="--resume"):
        make_backfill(settings, redis).plan(
            since=now - 3600, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
        )

    resumed_job = make_backfill(settings, redis, page_size=2)
    resumed = resumed_job.run(resumed_job.resume())
    assert resumed.done
    assert resumed.counts.listed == 6
    assert resumed.counts.new + resumed.counts.ignored == 6
    # The resumed request continued after the saved cursor, inside the saved window.
    requests = stripe_api.list_requests()
    assert requests[2].param("starting_after") == newest_first[3]
    assert requests[2].param("created[gte]") == str(plan.since)
    assert requests[2].param("created[lte]") == str(plan.until)
    assert redis.llen(keys.INBOX) == 6  # every handled event once (none ignored)
    with pytest.raises(BackfillRefused, match="no unfinished backfill"):
        make_backfill(settings, redis).resume()


def test_an_event_received_during_the_backfill_is_not_doubled(
    make_settings: Callable[..., Settings],
    stripe_api: StripeServer,
    runtime: Runtime,
    redis: Redis,
    collector: Collector,
    now: int,
) -> None:
    settings = make_settings()
    events = seed(stripe_api, now)
    # While page 1 is fed, Stripe's retry of an older event (on page 3) arrives; and the
    # newest event, already backfilled, is delivered by webhook too.
    answers: list[str] = []

    def webhook_midway(checkpoint: Checkpoint, _: float) -> None:
        if checkpoint.counts.pages == 1:
            answers.append(post_webhook(settings, events["sub_deleted_2022"])["status"])
            answers.append(post_webhook(settings, events["co_payment_paid_userid_2022"])["status"])

    job = make_backfill(settings, redis, page_size=2, on_page=webhook_midway)
    done = job.run(
        job.plan(
            since=now - 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
        )
    )
    assert answers == ["accepted", "duplicate"]
    assert (done.counts.new, done.counts.duplicates, done.counts.ignored) == (5, 1, 0)
    drain_all(runtime)
    ids = collector.message_ids()
    assert Counter(ids) == Counter(m for _, mids in EVENTS.values() for m in mids)


def test_types_filter_is_sent_to_stripe(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, redis: Redis, now: int
) -> None:
    settings = make_settings()
    seed(stripe_api, now)
    job = make_backfill(settings, redis)
    done = job.run(
        job.plan(
            since=now - 86400,
            until=None,
            types=["invoice.paid", "invoice.payment_failed"],
            account=None,
            dedup_ttl=settings.dedup_ttl,
        )
    )
    assert (done.counts.listed, done.counts.new) == (2, 2)
    (request,) = stripe_api.list_requests()
    assert request.param("types[0]") == "invoice.paid"
    assert request.param("types[1]") == "invoice.payment_failed"


def test_refuses_more_than_the_30_days_stripe_keeps(
    make_settings: Callable[..., Settings], redis: Redis, now: int
) -> None:
    settings = make_settings(BRIDGE_DEDUP_TTL=str(31 * 86400))
    job = make_backfill(settings, redis, clock=lambda: float(now))
    with pytest.raises(BackfillRefused, match="Stripe keeps events for 30 days"):
        job.plan(
            since=now - 31 * 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
        )
    # 29 days is fine with a dedup window that covers it.
    plan = job.plan(
        since=now - 29 * 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
    )
    assert plan.since == now - 29 * 86400


def test_refuses_a_window_older_than_the_dedup_ttl(
    make_settings: Callable[..., Settings], redis: Redis, now: int
) -> None:
    settings = make_settings()  # default BRIDGE_DEDUP_TTL: 7 days
    job = make_backfill(settings, redis, clock=lambda: float(now))
    with pytest.raises(BackfillRefused, match=r"BRIDGE_DEDUP_TTL.*delivered twice"):
        job.plan(
            since=now - 8 * 86400, until=None, types=(), account=None, dedup_ttl=settings.dedup_ttl
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", 1_000_000 - 3 * 86400),
        ("12h", 1_000_000 - 12 * 3600),
        ("90m", 1_000_000 - 90 * 60),
        ("2w", 1_000_000 - 14 * 86400),
        ("1700000000", 1_700_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000),
        ("2023-11-14", 1_699_920_000),
    ],
)
def test_parse_when(text: str, expected: int) -> None:
    assert parse_when(text, 1_000_000.0) == expected


def test_parse_when_refuses_nonsense() -> None:
    with pytest.raises(BackfillRefused, match="cannot read"):
        parse_when("yesterday-ish", 0.0)
