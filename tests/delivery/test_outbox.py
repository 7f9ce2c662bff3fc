from __future__ import annotations

import time
from decimal import Decimal

import orjson
from redis import Redis

from bridge import keys
from bridge.delivery.outbox import MAX_BATCH_BYTES, MAX_CALL_BYTES, Outbox, encode_items


def calls(n: int, pad: int = 0) -> list[dict[str, object]]:
    return [
        {"type": "track", "messageId": f"m{i}", "userId": "u", "p": "x" * pad} for i in range(n)
    ]


def fill(outbox: Outbox, n: int, pad: int = 0) -> None:
    items, too_large = encode_items(calls(n, pad), time.time())
    assert not too_large
    outbox.append(items)


def test_a_batch_waits_for_flush_at_or_the_interval(redis: Redis) -> None:
    outbox = Outbox(redis)
    fill(outbox, 3)
    assert outbox.take(flush_at=5, interval=60, lease=10, batch_id="b1") is None
    now = time.time()
    late = outbox.take(flush_at=5, interval=60, lease=10, batch_id="b1", now=now + 61)
    assert late is not None
    assert late.count == 3
    assert [c["messageId"] for c in orjson.loads(late.calls)] == ["m0", "m1", "m2"]
    assert len(outbox) == 0


def test_a_full_batch_goes_at_once_and_keeps_the_rest(redis: Redis) -> None:
    outbox = Outbox(redis)
    fill(outbox, 7)
    batch = outbox.take(flush_at=5, interval=60, lease=10, batch_id="b1")
    assert batch is not None
    assert batch.count == 5
    assert len(outbox) == 2


def test_batches_never_exceed_the_byte_limit(redis: Redis) -> None:
    outbox = Outbox(redis)
    fill(outbox, 100, pad=30_000)  # ~3 MB of calls, each under 32 KB
    sizes = []
    while batch := outbox.take(
        flush_at=250, interval=0, lease=10, batch_id=f"b{len(sizes)}", force=True
    ):
        sizes.append((len(batch.calls), batch.count))
    assert sum(n for _, n in sizes) == 100
    assert all(size <= MAX_BATCH_BYTES for size, _ in sizes)
    assert len(sizes) >= 6


def test_a_call_over_32kb_is_refused(redis: Redis) -> None:
    items, too_large = encode_items(calls(1, pad=MAX_CALL_BYTES), time.time())
    assert items == []
    assert len(too_large) == 1


def test_a_leased_batch_is_taken_again_with_the_same_bytes_after_its_lease(redis: Redis) -> None:
    outbox = Outbox(redis)
    fill(outbox, 4)
    first = outbox.take(flush_at=4, interval=60, lease=5, batch_id="b1")
    assert first is not None
    assert outbox.take_due(lease=5) is None  # still leased
    again = outbox.take_due(lease=5, now=time.time() + 6)
    assert again is not None
    assert (again.id, again.calls, again.attempts) == (first.id, first.calls, 2)
    assert outbox.ack(again)
    assert not outbox.ack(again)
    assert outbox.pending() == 0
    assert redis.hlen(keys.BATCHES) == 0


def test_retry_at_reschedules(redis: Redis) -> None:
    outbox = Outbox(redis)
    fill(outbox, 1)
    batch = outbox.take(flush_at=1, interval=60, lease=60, batch_id="b1")
    assert batch is not None
    outbox.retry_at(batch, time.time() - 1)
    assert outbox.take_due(lease=60) is not None


AMOUNT = "123456789012345678.91"  # more digits than a binary float holds


def test_a_split_keeps_decimal_amounts_byte_for_byte(redis: Redis) -> None:
    outbox = Outbox(redis)
    exact = [
        {
            "type": "track",
            "messageId": f"m{i}",
            "userId": "u",
            "properties": {"revenue": Decimal(AMOUNT)},
        }
        for i in range(4)
    ]
    items, _ = encode_items(exact, time.time())
    outbox.append(items)
    batch = outbox.take(flush_at=4, interval=0, lease=10, batch_id="b")
    assert batch is not None
    pipe = redis.pipeline(transaction=True)
    outbox.queue_split(pipe, batch, time.time())
    pipe.execute()
    for part in ("b.0", "b.1"):
        body = redis.hget(keys.BATCHES, part)
        assert body is not None
        assert body.count(f'"revenue":{AMOUNT}'.encode()) == 2


def test_no_batch_holds_more_than_segment_takes(redis: Redis) -> None:
    outbox = Outbox(redis)
    # Small calls, so that only the count can stop the batch (not the 500 KB limit).
    tiny = [{"type": "track", "messageId": str(i), "userId": "u"} for i in range(2600)]
    items, _ = encode_items(tiny, time.time())
    outbox.append(items)
    batch = outbox.take(flush_at=5000, interval=0, lease=10, batch_id="big")
    assert batch is not None
    assert batch.count == 2500  # Segment's documented maximum per batch
    assert len(orjson.loads(batch.calls)) == 2500
    assert len(outbox) == 100
