from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from redis import Redis

from bridge import keys
from bridge.delivery import MAX_CALL_BYTES, Client, FlushEvent, InvalidCall
from bridge.devtools.collector import Collector
from tests.delivery import support


@pytest.fixture
def client(redis: Redis, redis_url: str, collector: Collector) -> Iterator[Client]:
    c = Client(support.settings(redis_url, collector.url), redis=redis)
    yield c
    c.close()


def test_every_call_kind_is_durable_then_delivered(
    client: Client, collector: Collector, redis: Redis
) -> None:
    ids = [
        client.identify("u1", {"email": "a@example.com"}),
        client.track("u1", "Signed Up", {"plan": "pro"}),
        client.group("u1", "g1", {"name": "Acme"}),
        client.page("u1", "Docs", "Intro"),
        client.alias("anon-1", "u1"),
        client.track(anonymous_id="a1", event="Viewed", message_id="fixed-id"),
    ]
    assert redis.llen(keys.OUTBOX) == 6  # durable before any flush
    assert ids[-1] == "fixed-id"
    flushed: list[FlushEvent] = []
    client.on("flushed", flushed.append)
    assert client.flush().sent == 6
    assert collector.message_ids() == ids
    kinds = [c["type"] for c in collector.calls]
    assert kinds == ["identify", "track", "group", "page", "alias", "track"]
    first = collector.calls[0]
    assert first["context"]["library"]["name"] == "bridge"
    assert first["timestamp"].endswith("Z")
    assert collector.calls[4]["previousId"] == "anon-1"
    assert flushed[0].calls == 6


def test_validation(client: Client) -> None:
    with pytest.raises(InvalidCall, match="user_id or an anonymous_id"):
        client.track(event="E")
    with pytest.raises(InvalidCall):
        client.track("u")
    with pytest.raises(InvalidCall):
        client.group("u", "")


def test_a_call_over_32kb_goes_to_the_dead_letter_store(client: Client, redis: Redis) -> None:
    client.track("u", "Huge", {"blob": "x" * MAX_CALL_BYTES})
    assert redis.llen(keys.OUTBOX) == 0
    [entry] = list(client.dead_letters)
    assert entry.reason.startswith("call_too_large")


def test_calls_survive_the_client(redis: Redis, redis_url: str, collector: Collector) -> None:
    collector.fail(503)
    c = Client(support.settings(redis_url, collector.url), redis=redis)
    c.track("u", "Kept")
    c.close()  # the flush fails: the call stays durable for the workers
    collector.recover()
    assert collector.calls == []
    assert redis.zcard(keys.BATCHES_DUE) == 1


def test_a_value_no_encoder_writes_is_an_invalid_call(client: Client, redis: Redis) -> None:
    with pytest.raises(InvalidCall, match="cannot be encoded"):
        client.track("u1", "Big", {"n": 2**64})
    assert redis.llen(keys.OUTBOX) == 0


def test_a_refused_decimal_amount_is_stored_and_replayed_byte_for_byte(
    client: Client, collector: Collector, redis: Redis
) -> None:
    amount = "123456789012345678.91"  # more digits than a binary float holds
    good = client.track("u1", "Order Completed", {"revenue": Decimal("1.50")})
    bad = client.track("u1", "Order Completed", {"revenue": Decimal(amount)})
    collector.poison(bad)
    client.flush()  # 400: split in two, the refused call stands alone: dead letter
    assert collector.message_ids() == [good]
    (entry_id,) = client.dead_letters.ids()
    assert f'"revenue":{amount}'.encode() in (redis.hget(keys.DLQ, entry_id) or b"")
    assert client.dead_letters.replay(entry_id) is not None
    (item,) = redis.lrange(keys.OUTBOX, 0, -1)
    assert f'"revenue":{amount}}}'.encode() in item
