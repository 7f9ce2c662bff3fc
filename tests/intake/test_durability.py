"""2xx means durable; Redis unreachable means 503 and nothing half-written."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from flask import Flask
from redis import Redis

from bridge import keys
from bridge.devtools.redis_server import RedisServer, free_port
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers


def test_redis_unreachable_is_503_json(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", BRIDGE_REDIS_TIMEOUT="0.5")
    body = stripe_event()
    resp = app.test_client().post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
    )
    assert resp.status_code == 503
    assert resp.get_json() == {
        "error": "event store unavailable; retry later",
        "reason": "unavailable",
    }


def test_retry_after_outage_is_accepted_not_duplicate(
    make_app: Callable[..., Flask], redis: Redis, redis_server: RedisServer
) -> None:
    client = make_app(BRIDGE_REDIS_TIMEOUT="0.5").test_client()
    body = stripe_event()
    redis_server.stop()
    try:
        first = client.post(
            "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
        )
    finally:
        redis_server.start()
    assert first.status_code == 503
    # Nothing of the failed attempt is left: no dedup key claiming the event was seen.
    assert redis.keys(f"{keys.DEDUP_SHARD_PREFIX}*") == []
    assert redis.llen(keys.INBOX) == 0
    # The provider retries and the event goes through once.
    again = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert (again.status_code, again.get_json()["status"]) == (200, "accepted")
    assert redis.llen(keys.INBOX) == 1


def test_accepted_events_survive_redis_restart(
    make_app: Callable[..., Flask], redis: Redis, redis_server: RedisServer
) -> None:
    client = make_app().test_client()
    bodies = [stripe_event() for _ in range(20)]
    for body in bodies:
        resp = client.post(
            "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
        )
        assert resp.status_code == 200
    redis_server.restart()  # SIGTERM: Redis writes its append-only file and comes back
    fresh = Redis.from_url(redis_server.url)
    stored = {orjson.loads(raw)["id"] for raw in fresh.lrange(keys.INBOX, 0, -1)}
    assert stored == {orjson.loads(b)["id"] for b in bodies}
