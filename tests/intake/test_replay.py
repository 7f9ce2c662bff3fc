"""Replays through the real app: where the event id is not signed, the signed content
is the replay key (issue 8, item 3)."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient
from redis import Redis

from bridge import keys
from tests.signing import (
    CLERK_SECRET,
    GITHUB_SECRET,
    clerk_event,
    github_event,
    github_headers,
    standard_headers,
)


def _github(client: FlaskClient, body: bytes, delivery: str) -> tuple[int, str]:
    resp = client.post(
        "/webhooks/github",
        data=body,
        headers=github_headers(body, GITHUB_SECRET, "marketplace_purchase", delivery),
    )
    return resp.status_code, resp.get_json()["status"]


def test_github_body_replayed_under_new_delivery_ids_is_a_duplicate(
    client: FlaskClient, redis: Redis
) -> None:
    body = github_event()
    answers = [_github(client, body, str(uuid.uuid4())) for _ in range(3)]
    # Before: three "accepted" and three Order Completed from one purchase.
    assert answers == [(200, "accepted"), (200, "duplicate"), (200, "duplicate")]
    assert redis.llen(keys.INBOX) == 1


def test_github_redelivery_with_the_same_delivery_id_is_a_duplicate(
    client: FlaskClient, redis: Redis
) -> None:
    body = github_event()
    delivery = str(uuid.uuid4())
    assert _github(client, body, delivery) == (200, "accepted")
    assert _github(client, body, delivery) == (200, "duplicate")
    assert redis.llen(keys.INBOX) == 1


def test_github_distinct_bodies_are_distinct_events(client: FlaskClient, redis: Redis) -> None:
    answers = [_github(client, github_event(), str(uuid.uuid4())) for _ in range(3)]
    assert answers == [(200, "accepted")] * 3
    assert redis.llen(keys.INBOX) == 3


def test_github_replay_key_lives_as_long_as_the_id_key(client: FlaskClient, redis: Redis) -> None:
    body = github_event()
    delivery = str(uuid.uuid4())
    assert _github(client, body, delivery) == (200, "accepted")
    # Both digests (delivery id and signed body) are fields of the current bucket's shard
    # (one shard: no bucket before it), so they expire together.
    shards = [k for k in redis.scan_iter(match="bridge:seen:*") if k != b"bridge:seen:meta"]
    assert len(shards) == 1
    assert redis.hlen(shards[0]) == 2
    assert redis.ttl(shards[0]) > 4 * 24 * 3600


def test_standard_webhooks_dedups_on_the_signed_id_only(client: FlaskClient, redis: Redis) -> None:
    body = clerk_event()
    first = client.post(
        "/webhooks/clerk", data=body, headers=standard_headers(body, CLERK_SECRET, msg_id="msg_a")
    )
    again = client.post(
        "/webhooks/clerk", data=body, headers=standard_headers(body, CLERK_SECRET, msg_id="msg_a")
    )
    # The sender signing the same body under a new id is a new message (it holds the
    # secret); no content key is kept for a scheme whose id is signed.
    other = client.post(
        "/webhooks/clerk", data=body, headers=standard_headers(body, CLERK_SECRET, msg_id="msg_b")
    )
    statuses = [r.get_json()["status"] for r in (first, again, other)]
    assert statuses == ["accepted", "duplicate", "accepted"]
    assert list(redis.scan_iter(match=f"{keys.PREFIX}:dedup-signed:*")) == []
