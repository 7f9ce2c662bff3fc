"""The Python Client's screen call and context helpers, through the real outbox."""

from __future__ import annotations

from redis import Redis

from bridge.delivery import Client
from bridge.delivery.context import browser_anonymous_id, consent, external_ids, merge
from bridge.settings import Settings
from tests.collect.conftest import outbox


def test_screen_and_the_context_helpers(redis: Redis, redis_url: str) -> None:
    client = Client(Settings.from_env({"REDIS_URL": redis_url}), redis=redis)
    cookie = "session=1; ajs_anonymous_id=%22b7e0c9%22; other=2"
    client.screen(
        "u1",
        name="Checkout",
        properties={"step": 2},
        anonymous_id=Client.browser_anonymous_id(cookie),
        context=merge(
            Client.consent({"Analytics": True, "Advertising": False}),
            Client.external_ids(("cus_9", "stripe_customer_id")),
        ),
    )
    [call] = outbox(redis)
    assert call["type"] == "screen"
    assert (call["userId"], call["anonymousId"], call["name"]) == ("u1", "b7e0c9", "Checkout")
    assert call["properties"] == {"step": 2}
    assert call["context"]["consent"] == {
        "categoryPreferences": {"Analytics": True, "Advertising": False}
    }
    assert call["context"]["externalIds"] == [
        {"id": "cus_9", "type": "stripe_customer_id", "collection": "users", "encoding": "none"}
    ]
    assert call["context"]["library"]["name"] == "bridge"
    client.sender.close()


def test_browser_anonymous_id_from_a_mapping_or_nothing() -> None:
    assert browser_anonymous_id({"ajs_anonymous_id": "plain-id"}) == "plain-id"
    assert browser_anonymous_id("a=1") is None
    assert browser_anonymous_id(None) is None
    assert consent({"Ads": 0}) == {"consent": {"categoryPreferences": {"Ads": False}}}
    assert external_ids(("1", "t"))["externalIds"][0]["id"] == "1"
    assert merge({"a": {"x": 1}}, {"a": {"y": 2}}, None) == {"a": {"x": 1, "y": 2}}
