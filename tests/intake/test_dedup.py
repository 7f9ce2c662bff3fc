"""The compact dedup layout through the real app and Redis (issue 15, item 1).

Expected keys and fields are spelled here from the layout's description in
bridge/dedup.py (fields: BLAKE2b-112 of ``kind NUL source NUL value``; hashes
``bridge:seen:<bucket>:<shards>:<first 3 bytes mod shards>``, bucket = unix time //
width, width = ceil(ttl / 8), shard counts per generation in ``bridge:seen:meta``), not
computed by bridge.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable

import orjson
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from bridge import keys
from tests.signing import (
    GITHUB_SECRET,
    STRIPE_SECRET,
    github_event,
    github_headers,
    stripe_event,
    stripe_headers,
)

WEEK = 7 * 24 * 3600
#: ceil(7 days / 8) seconds: the bucket width at the default window.
WIDTH = 75600


def member(kind: str, source: str, value: str) -> bytes:
    return hashlib.blake2b(f"{kind}\0{source}\0{value}".encode(), digest_size=14).digest()


META = "bridge:seen:meta"


def remember(redis: Redis, bucket: int, digest: bytes) -> None:
    """Write ``digest`` into ``bucket`` (one shard) as bridge would have."""
    redis.hset(META, str(bucket), "1")
    redis.hset(f"bridge:seen:{bucket}:1:0", digest, "")


def remembered(redis: Redis) -> dict[str, set[bytes]]:
    """Shard key -> digests, for every shard of every bucket."""
    return {
        key.decode(): set(redis.hkeys(key))
        for key in redis.scan_iter(match="bridge:seen:*")
        if key != META.encode()
    }


def post_stripe(client: FlaskClient, body: bytes) -> str:
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["status"])


def post_github(client: FlaskClient, body: bytes, delivery: str) -> str:
    headers = github_headers(body, GITHUB_SECRET, "marketplace_purchase", delivery)
    resp = client.post("/webhooks/github", data=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["status"])


def test_an_accepted_id_is_a_14_byte_digest_in_the_current_bucket(
    client: FlaskClient, redis: Redis
) -> None:
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    before = int(time.time()) // WIDTH
    assert post_stripe(client, body) == "accepted"
    after = int(time.time()) // WIDTH
    digest = member("id", "stripe", event_id)
    ((key, fields),) = remembered(redis).items()
    assert fields == {digest}
    _, _, index, shards, shard = key.split(":")
    assert int(index) in {before, after}
    # A first bucket (none before it) has one shard; it counts its ids.
    assert redis.hgetall(META) == {index.encode(): b"1", f"{index}:n".encode(): b"1"}
    assert (shards, shard) == ("1", "0")
    # The bucket lives the window after its span ends: at least the window for every id.
    ttl = redis.ttl(key)
    now = int(time.time())
    assert (int(index) + 1) * WIDTH + WEEK - now - 2 <= ttl <= (int(index) + 1) * WIDTH + WEEK - now
    assert ttl >= WEEK - 2
    # No key per id any more.
    assert not redis.exists(keys.dedup("stripe", event_id))


def test_a_bucket_is_sharded_on_the_traffic_of_the_bucket_before(
    client: FlaskClient, redis: Redis
) -> None:
    index = int(time.time()) // WIDTH
    # 1,000 ids in the bucket before: 1000 / 48 per shard -> 21 -> 32 shards (power of two).
    redis.hset(META, mapping={str(index - 1): "1", f"{index - 1}:n": "1000"})
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    assert post_stripe(client, body) == "accepted"
    digest = member("id", "stripe", event_id)
    assert int(redis.hget(META, str(index)) or 0) == 32
    expected_key = f"bridge:seen:{index}:32:{int.from_bytes(digest[:3], 'big') % 32}"
    assert remembered(redis) == {expected_key: {digest}}
    assert post_stripe(client, body) == "duplicate"


def test_an_outgrown_bucket_adds_a_generation_of_four_times_the_shards(
    client: FlaskClient, redis: Redis
) -> None:
    index = int(time.time()) // WIDTH
    # Two shards hold 2 x 48 ids on average: the 96th id is already in, so the next one
    # goes to a generation of 8 shards; an id of the first generation is still found.
    old = member("id", "stripe", "evt_old")
    redis.hset(META, mapping={str(index): "2", f"{index}:n": "96"})
    redis.hset(f"bridge:seen:{index}:2:{int.from_bytes(old[:3], 'big') % 2}", old, "")
    body = stripe_event()
    digest = member("id", "stripe", orjson.loads(body)["id"])
    assert post_stripe(client, body) == "accepted"
    assert redis.hget(META, str(index)) == b"2,8"
    assert redis.hexists(f"bridge:seen:{index}:8:{int.from_bytes(digest[:3], 'big') % 8}", digest)
    assert post_stripe(client, body) == "duplicate"
    assert post_stripe(client, stripe_event(id="evt_old")) == "duplicate"


def test_bucket_metadata_older_than_the_window_is_dropped(
    client: FlaskClient, redis: Redis
) -> None:
    index = int(time.time()) // WIDTH
    stale = index - 12
    redis.hset(META, mapping={str(stale): "4", f"{stale}:n": "9", str(index - 1): "1"})
    assert post_stripe(client, stripe_event()) == "accepted"
    fields = set(redis.hkeys(META))
    assert str(stale).encode() not in fields
    assert f"{stale}:n".encode() not in fields
    assert str(index - 1).encode() in fields


def test_the_bucket_width_follows_the_window(make_app: Callable[..., Flask], redis: Redis) -> None:
    ttl = 5 * 24 * 3600  # width ceil(432000 / 8) = 54000
    client = make_app(BRIDGE_DEDUP_TTL=str(ttl)).test_client()
    now = int(time.time())
    assert post_stripe(client, stripe_event()) == "accepted"
    assert set(remembered(redis)) <= {
        f"bridge:seen:{now // 54000}:1:0",
        f"bridge:seen:{now // 54000 + 1}:1:0",
    }


def test_an_id_in_an_older_bucket_of_the_window_is_a_duplicate(
    client: FlaskClient, redis: Redis
) -> None:
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    # Seen six days ago: bucket (now - 6 days) // width.
    remember(redis, (int(time.time()) - 6 * 24 * 3600) // WIDTH, member("id", "stripe", event_id))
    assert post_stripe(client, body) == "duplicate"
    assert redis.llen(keys.INBOX) == 0


def test_an_id_in_the_next_bucket_is_a_duplicate(client: FlaskClient, redis: Redis) -> None:
    # Another web host whose clock runs ahead wrote it into the next bucket.
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    remember(redis, int(time.time()) // WIDTH + 1, member("id", "stripe", event_id))
    assert post_stripe(client, body) == "duplicate"


def test_an_id_older_than_the_window_is_forgotten(client: FlaskClient, redis: Redis) -> None:
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    # A bucket whose whole span ended more than a window ago (not yet expired).
    remember(redis, (int(time.time()) - WEEK) // WIDTH - 2, member("id", "stripe", event_id))
    assert post_stripe(client, body) == "accepted"


def test_the_same_id_from_another_source_is_not_a_duplicate(
    client: FlaskClient, redis: Redis
) -> None:
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    remember(redis, int(time.time()) // WIDTH, member("id", "other", event_id))
    assert post_stripe(client, body) == "accepted"


def test_an_id_remembered_under_the_old_layout_stays_a_duplicate(
    client: FlaskClient, redis: Redis
) -> None:
    # What the release before wrote: SET bridge:dedup:<source>:<id> <time> EX ttl.
    body = stripe_event()
    event_id = orjson.loads(body)["id"]
    redis.set(f"bridge:dedup:stripe:{event_id}", "1764500000.0", ex=WEEK)
    assert post_stripe(client, body) == "duplicate"
    assert redis.llen(keys.INBOX) == 0
    assert remembered(redis) == {}


def test_a_signed_digest_remembered_under_the_old_layout_stays_a_duplicate(
    client: FlaskClient, redis: Redis
) -> None:
    body = github_event()
    # GitHub signs the body only: its digest is the replay key (SHA-256 hex of the body).
    digest = hashlib.sha256(body).hexdigest()
    redis.set(f"bridge:dedup-signed:github:{digest}", "1764500000.0", ex=WEEK)
    assert post_github(client, body, str(uuid.uuid4())) == "duplicate"
    assert redis.llen(keys.INBOX) == 0


def test_a_github_event_remembers_its_delivery_id_and_its_signed_digest(
    client: FlaskClient, redis: Redis
) -> None:
    body = github_event()
    delivery = str(uuid.uuid4())
    assert post_github(client, body, delivery) == "accepted"
    members = set().union(*remembered(redis).values())
    digest = hashlib.sha256(body).hexdigest()
    assert members == {member("id", "github", delivery), member("signed", "github", digest)}


def _fill(make_app: Callable[..., Flask], redis: Redis, count: int) -> float:
    """Bytes of Redis memory per id after ``count`` ids through the store's own script
    (not HTTP, for time); the inbox is not dedup state and is left out."""
    from bridge.providers import VerifiedEvent

    store = make_app().extensions["bridge"].store
    for n in range(count):
        event = VerifiedEvent(id=f"evt_{n:024d}", type="x", time=0.0, body={}, raw=b"{}")
        store.accept("stripe", event)
        if n % 5000 == 4999:
            redis.delete(keys.INBOX)
    shards = remembered(redis)
    assert sum(len(fields) for fields in shards.values()) == count
    used = sum(int(redis.memory_usage(key, samples=0) or 0) for key in shards)
    return (used + int(redis.memory_usage(META, samples=0) or 0)) / count


def test_memory_per_remembered_id_is_at_most_64_bytes(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    """Steady traffic: the bucket before held as many ids. Bounded: 20,000 ids."""
    index = int(time.time()) // WIDTH
    redis.hset(META, mapping={str(index - 1): "1", f"{index - 1}:n": "20000"})
    per_id = _fill(make_app, redis, 20_000)
    assert per_id <= 64, per_id


def test_memory_per_remembered_id_of_a_first_bucket_is_at_most_64_bytes(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    """A new deployment (no bucket before) grows generations. Bounded: 20,000 ids."""
    per_id = _fill(make_app, redis, 20_000)
    assert per_id <= 64, per_id
