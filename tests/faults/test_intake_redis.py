"""Intake when Redis is full, restarted or refusing writes (issue 8, items 5 and 13),
against the real test redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from flask import Flask
from redis import Redis

from bridge import keys
from bridge.devtools.redis_server import RedisServer, free_port
from bridge.intake import create_app
from bridge.settings import Settings
from tests.intake.conftest import LogLines, base_env
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers


@pytest.fixture
def make_app(redis_url: str) -> Callable[[], Flask]:
    def build() -> Flask:
        return create_app(Settings.from_env(base_env(redis_url)), log_stream=LogLines())

    return build


@pytest.fixture
def app(make_app: Callable[[], Flask]) -> Flask:
    return make_app()


def _post(app: Flask, body: bytes, secret: str = STRIPE_SECRET) -> tuple[int, dict[str, str]]:
    resp = app.test_client().post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, secret)
    )
    return resp.status_code, resp.get_json()


@pytest.fixture
def full_redis(redis: Redis) -> Iterator[Redis]:
    """The test Redis with maxmemory below what it uses and noeviction: it answers
    PING and reads but refuses every write. Restored afterwards."""
    before = (
        redis.config_get("maxmemory")["maxmemory"],
        redis.config_get("maxmemory-policy")["maxmemory-policy"],
    )
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", 1)
    try:
        yield redis
    finally:
        redis.config_set("maxmemory", before[0])
        redis.config_set("maxmemory-policy", before[1])


def test_full_redis_is_503_store_full_and_nothing_half_written(
    app: Flask, full_redis: Redis
) -> None:
    body = stripe_event()
    status, answer = _post(app, body)
    # Before: OutOfMemoryError is a ResponseError, not a connection error, so a 500.
    assert status == 503
    assert answer == {"error": "event store is full; retry later", "reason": "store_full"}
    assert full_redis.keys(f"{keys.DEDUP_SHARD_PREFIX}*") == []
    assert full_redis.llen(keys.INBOX) == 0


def test_rejections_stay_4xx_when_redis_is_full(app: Flask, full_redis: Redis) -> None:
    body = stripe_event()
    status, answer = _post(app, body, secret="whsec_wrong")
    assert (status, answer["reason"]) == (400, "bad_signature")


def test_readyz_says_redis_refuses_writes_because_memory_is_full(
    app: Flask, full_redis: Redis
) -> None:
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["problems"] == [
        "redis reachable but refusing writes: memory full (used memory over maxmemory)"
    ]


def test_intake_takes_events_again_once_memory_frees(app: Flask, redis: Redis) -> None:
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", 1)
    try:
        body = stripe_event()
        assert _post(app, body)[0] == 503
    finally:
        redis.config_set("maxmemory", 0)
    assert _post(app, body) == (200, {"status": "accepted", "id": orjson.loads(body)["id"]})
    assert app.test_client().get("/readyz").status_code == 200


def test_first_webhook_after_a_redis_restart_is_accepted(
    make_app: Callable[..., Flask], redis: Redis, redis_server: RedisServer
) -> None:
    app = make_app()
    assert _post(app, stripe_event())[0] == 200  # the kept connection is open now
    redis_server.restart()  # closes it; Redis comes back with its append-only file
    body = stripe_event()
    # Before: the kept connection was dead and the first webhook got a 503.
    assert _post(app, body) == (200, {"status": "accepted", "id": orjson.loads(body)["id"]})
    assert Redis.from_url(redis_server.url).llen(keys.INBOX) == 2


def test_readyz_after_a_redis_restart_is_ready(
    make_app: Callable[[], Flask], redis: Redis, redis_server: RedisServer
) -> None:
    app = make_app()
    assert app.test_client().get("/readyz").status_code == 200  # a pooled connection now
    redis_server.restart()
    # The pool notices the connection Redis closed and opens another: no false alarm
    # to the orchestrator after every Redis restart.
    resp = app.test_client().get("/readyz")
    assert (resp.status_code, resp.get_json()["problems"]) == (200, [])


def test_read_only_redis_is_503_refusing_writes_and_readyz_says_why(
    app: Flask, redis: Redis
) -> None:
    # A replica (after a failover the old primary can come back as one) is read-only.
    # Its primary here does not exist, so it never syncs and keeps its data.
    redis.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    try:
        status, answer = _post(app, stripe_event())
        ready = app.test_client().get("/readyz")
    finally:
        redis.execute_command("REPLICAOF", "NO", "ONE")
    assert (status, answer["reason"]) == (503, "store_refusing_writes")
    assert answer["error"] == "event store is refusing writes; retry later"
    assert ready.status_code == 503
    (problem,) = ready.get_json()["problems"]
    assert problem.startswith("redis reachable but refusing writes: ")
    assert "read only replica" in problem
