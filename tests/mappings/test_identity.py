from __future__ import annotations

import hashlib

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bridge import keys
from bridge.envelope import Envelope
from bridge.mappings import IdentityStore, load_text

MAPPING = """\
provider: stripe
secrets: s
identity:
  user_id: data.object.client_reference_id
  customer: data.object.customer
rules:
  - name: session
    on: checkout.session.completed
    emit: []
  - name: paid
    on: invoice.paid
    emit:
      - {type: track, event: Order Completed}
"""


def envelope(event_type: str, obj: dict[str, object], event_id: str) -> Envelope:
    body = {"id": event_id, "type": event_type, "data": {"object": obj}}
    return Envelope("shop", event_id, event_type, 1700000000.0, 0.0, body)


def test_learn_and_resolve_use_the_reserved_keys(redis: Redis) -> None:
    store = IdentityStore(redis)
    assert store.resolve("shop", ["cus_1"]) is None
    store.learn("shop", ["cus_1", "pi_1"], "user_1")
    # bridge.kept: a 14-byte BLAKE2b field of ("user", source, customer) in the first
    # generation's only shard (one shard, never expiring).
    field = hashlib.blake2b(b"user\0shop\0cus_1", digest_size=14).digest()
    assert redis.hget("bridge:users:1:0", field) == b"user_1"
    assert redis.ttl("bridge:users:1:0") == -1
    assert redis.get(keys.identity("shop", "cus_1")) is None  # the old layout: not written
    assert store.resolve("shop", ["cus_x", "pi_1"]) == "user_1"
    assert store.resolve("other", ["cus_1"]) is None


def test_a_session_teaches_the_invoice_its_user(redis: Redis) -> None:
    mapping, problems = load_text(MAPPING, "shop", {})
    assert mapping is not None, problems
    store = IdentityStore(redis)
    invoice = envelope("invoice.paid", {"customer": "cus_9"}, "evt_1")
    assert mapping.evaluate(invoice, store)[0]["anonymousId"] == "shop:cus_9"
    session = envelope(
        "checkout.session.completed", {"customer": "cus_9", "client_reference_id": "u9"}, "evt_2"
    )
    assert mapping.evaluate(session, store) == []
    calls = mapping.evaluate(envelope("invoice.paid", {"customer": "cus_9"}, "evt_3"), store)
    assert calls[0]["userId"] == "u9"
    assert "anonymousId" not in calls[0]


def test_redis_errors_propagate() -> None:
    store = IdentityStore(Redis(port=1, socket_connect_timeout=0.2))
    with pytest.raises(RedisConnectionError):
        store.resolve("shop", ["cus_1"])


def test_buffered_store_writes_a_chunk_in_one_go(redis: Redis) -> None:
    from bridge.mappings import BufferedIdentityStore

    inner = IdentityStore(redis)
    inner.learn("stripe", ["cus_old"], "u_old")
    buffered = BufferedIdentityStore(inner)
    buffered.learn("stripe", ["cus_1", "pi_1"], "u1")
    # Learned in this chunk: resolved from memory, not yet visible to other workers.
    assert buffered.resolve("stripe", ["pi_1"]) == "u1"
    assert inner.resolve("stripe", ["cus_1"]) is None
    # Known from before: resolved from Redis, in the order given.
    assert buffered.resolve("stripe", ["cus_none", "cus_old"]) == "u_old"
    assert buffered.resolve("github", ["cus_1"]) is None
    buffered.flush()
    assert inner.resolve("stripe", ["cus_1"]) == "u1"
    assert inner.resolve("stripe", ["pi_1"]) == "u1"


def test_buffered_store_asks_redis_once_per_customer_per_chunk(redis: Redis) -> None:
    from bridge.mappings import BufferedIdentityStore

    IdentityStore(redis).learn("stripe", ["cus_known"], "u_known")
    buffered = BufferedIdentityStore(IdentityStore(redis))

    def scripts() -> int:  # the lookup is one script call (EVALSHA, or EVAL if not cached)
        stats = redis.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))

    before = scripts()
    for _ in range(5):  # two rules of several events asking about the same customers
        assert buffered.resolve("stripe", ["cus_unknown", "cus_known"]) == "u_known"
        assert buffered.resolve("stripe", ["cus_unknown"]) is None
    assert scripts() - before == 1
    # A pair learned later in the chunk wins over what Redis said earlier.
    buffered.learn("stripe", ["cus_known"], "u_new")
    assert buffered.resolve("stripe", ["cus_known"]) == "u_new"
