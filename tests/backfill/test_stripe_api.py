"""StripeApi against a local server speaking Stripe's API: parameters, pages, errors."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from bridge.errors import ConfigError, ProviderApiError
from bridge.settings import Settings
from bridge.stripe_api import StripeApi
from tests.backfill.conftest import corpus
from tests.stripe_server import Failure, StripeServer


def make_api(settings: Settings, waits: list[float], attempts: int = 4) -> StripeApi:
    return StripeApi.from_settings(settings, sleep=waits.append, attempts=attempts)


def seed(server: StripeServer, now: int, n: int) -> list[str]:
    """n real events, one minute apart, newest last; returns their ids newest first."""
    ids = []
    for i in range(n):
        event = corpus(
            "inv_paid_basil_subscription_create", created=now - 3600 + 60 * i, id=f"evt_page_{i}"
        )
        server.add_event(event)
        ids.append(event["id"])
    return ids[::-1]


def test_lists_with_stripes_parameters_and_follows_has_more(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, now: int
) -> None:
    newest_first = seed(stripe_api, now, 5)
    api = make_api(make_settings(), [])
    pages = list(api.iter_events(gte=now - 7200, lte=now, types=["invoice.paid"], limit=2))
    assert [[e["id"] for _, e in p.events] for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]
    assert [p.has_more for p in pages] == [True, True, False]
    first, second, _ = stripe_api.list_requests()
    # The SDK's form encoding of nested params, as Stripe documents them.
    assert first.param("created[gte]") == str(now - 7200)
    assert first.param("created[lte]") == str(now)
    assert first.param("types[0]") == "invoice.paid"
    assert first.param("limit") == "2"
    assert first.param("starting_after") is None
    assert second.param("starting_after") == newest_first[1]
    assert first.headers["Authorization"] == "Bearer rk_test_bridge_backfill"


def test_raw_event_bytes_parse_back_to_what_stripe_sent(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, now: int
) -> None:
    event = corpus("co_payment_paid_userid_2022", created=now - 60)
    stripe_api.add_event(event)
    page = make_api(make_settings(), []).list_events_page()
    ((raw, parsed),) = page.events
    assert orjson.loads(raw) == event == parsed


def test_429_waits_retry_after_then_succeeds(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, now: int
) -> None:
    seed(stripe_api, now, 1)
    stripe_api.fail_next(
        Failure(429, {"Retry-After": "2"}, "invalid_request_error", "Too many requests"),
        Failure(429, {}, "invalid_request_error", "Too many requests"),
    )
    waits: list[float] = []
    page = make_api(make_settings(), waits).list_events_page()
    assert [e["id"] for _, e in page.events] == ["evt_page_0"]
    assert len(stripe_api.list_requests()) == 3
    assert waits[0] == 2.0  # Retry-After honoured
    assert 0 < waits[1] <= 1.0  # then backoff: 0.5 * 2 with jitter in [0.5, 1]


def test_should_retry_false_is_not_retried(
    make_settings: Callable[..., Settings], stripe_api: StripeServer
) -> None:
    stripe_api.fail_next(Failure(500, {"Stripe-Should-Retry": "false"}))
    waits: list[float] = []
    with pytest.raises(ProviderApiError) as info:
        make_api(make_settings(), waits).list_events_page()
    assert info.value.retryable is False
    assert info.value.status == 500
    assert waits == []
    assert len(stripe_api.list_requests()) == 1


def test_should_retry_true_retries_a_4xx(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, now: int
) -> None:
    seed(stripe_api, now, 1)
    stripe_api.fail_next(Failure(400, {"Stripe-Should-Retry": "true"}, "invalid_request_error"))
    waits: list[float] = []
    page = make_api(make_settings(), waits).list_events_page()
    assert len(page.events) == 1
    assert len(waits) == 1


def test_persistent_5xx_gives_up_retryable(
    make_settings: Callable[..., Settings], stripe_api: StripeServer
) -> None:
    stripe_api.fail_next(*[Failure(503) for _ in range(4)])
    waits: list[float] = []
    with pytest.raises(ProviderApiError) as info:
        make_api(make_settings(), waits, attempts=4).list_events_page()
    assert info.value.retryable is True
    assert info.value.status == 503
    assert len(waits) == 3
    assert len(stripe_api.list_requests()) == 4


def test_bad_key_names_the_permission(
    make_settings: Callable[..., Settings], stripe_api: StripeServer
) -> None:
    waits: list[float] = []
    api = make_api(make_settings(STRIPE_API_KEY="rk_test_wrong"), waits)
    with pytest.raises(ProviderApiError) as info:
        api.list_events_page()
    assert info.value.retryable is False
    assert info.value.status == 401
    assert "Events: Read" in info.value.message
    assert "rk_test_wrong" not in info.value.message
    assert waits == []


def test_no_answer_is_retryable(make_settings: Callable[..., Settings]) -> None:
    # A port nothing listens on: connection refused.
    settings = make_settings(STRIPE_API_BASE="http://127.0.0.1:9")
    waits: list[float] = []
    with pytest.raises(ProviderApiError) as info:
        make_api(settings, waits, attempts=2).list_events_page()
    assert info.value.retryable is True
    assert info.value.status is None
    assert len(waits) == 1


def test_without_a_key_it_is_off(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings().model_copy(update={"stripe_api_key": None})
    with pytest.raises(ConfigError, match=r"STRIPE_API_KEY is not set.*Events: Read"):
        StripeApi.from_settings(settings)


def test_connect_account_header(
    make_settings: Callable[..., Settings], stripe_api: StripeServer, now: int
) -> None:
    stripe_api.add_event(
        corpus("cus_created_with_user_id_derived", created=now - 60), account="acct_connected1"
    )
    api = make_api(make_settings(), [])
    assert api.list_events_page().events == []
    page = api.list_events_page(account="acct_connected1")
    assert [e["id"] for _, e in page.events] == ["evt_corpus_cus_created_uid"]
    assert stripe_api.list_requests()[-1].headers["Stripe-Account"] == "acct_connected1"


def test_a_hanging_api_times_out_and_is_retryable(
    make_settings: Callable[..., Settings], stripe_api: StripeServer
) -> None:
    import threading

    gate = threading.Event()
    stripe_api.holds[""] = gate  # the first page never answers in time
    waits: list[float] = []
    try:
        with pytest.raises(ProviderApiError) as info:
            make_api(make_settings(STRIPE_API_TIMEOUT="1"), waits, attempts=2).list_events_page()
    finally:
        gate.set()
    assert info.value.retryable is True
    assert info.value.status is None
    assert len(waits) == 1
    assert len(stripe_api.list_requests()) == 2
