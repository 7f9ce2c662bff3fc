"""What intake and workers record for the console: bounded by count and by age."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson
import pytest
from redis import Redis

from bridge.console import record
from bridge.console.mask import mask_headers, mask_personal
from bridge.delivery.observers import FlushEvent
from bridge.envelope import Envelope
from bridge.settings import Settings


def settings(redis_url: str, **extra: str) -> Settings:
    return Settings.from_env({"REDIS_URL": redis_url, "BRIDGE_CONSOLE_TOKEN": "t", **extra})


def webhook(recorder: record.IntakeRecorder, n: int) -> None:
    recorder.webhook(
        source="stripe",
        event_id=f"evt_{n}",
        event_type="charge.succeeded",
        outcome="accepted",
        reason="",
        status=200,
        ms=0.5,
        headers={"Stripe-Signature": "t=1,v1=abc", "Content-Type": "application/json"},
        body=b'{"id":"evt_%d"}' % n,
    )


def test_the_log_is_capped_by_count(redis: Redis, redis_url: str) -> None:
    recorder = record.IntakeRecorder(redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION="10"))
    for n in range(1000):
        webhook(recorder, n)
    recorder.flush()
    # Exactly the newest 10 webhooks stay (each rejected webhook is an entry of its own).
    kept = [orjson.loads(fields[b"m"])["eid"] for _, fields in redis.xrange(record.LOG)]
    assert kept == [f"evt_{n}" for n in range(990, 1000)]


def test_the_log_is_trimmed_by_age(redis: Redis, redis_url: str) -> None:
    recorder = record.IntakeRecorder(
        redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION_AGE="3600")
    )
    two_hours_ago = int((time.time() - 7200) * 1000)
    for n in range(3):
        meta = orjson.dumps({"kind": "webhook", "eid": f"old_{n}"})
        redis.xadd(record.LOG, {"m": meta, "h": b"{}", "b": b""}, id=f"{two_hours_ago}-{n}")
    webhook(recorder, 1)
    recorder.flush()
    ids = [orjson.loads(fields[b"m"])["eid"] for _, fields in redis.xrange(record.LOG)]
    assert ids == ["evt_1"]


def test_signatures_are_masked_before_they_are_stored(redis: Redis, redis_url: str) -> None:
    recorder = record.IntakeRecorder(redis, settings(redis_url))
    webhook(recorder, 1)
    recorder.flush()
    stored = redis.xrange(record.LOG)[0][1]
    headers = orjson.loads(stored[b"h"])
    assert headers["Stripe-Signature"] == "•••• (10 chars, masked)"
    assert headers["Content-Type"] == "application/json"
    assert b"v1=abc" not in b"".join(stored.values())


def test_mask_headers_covers_credentials() -> None:
    masked = mask_headers(
        {
            "Authorization": "Basic abc",
            "Cookie": "s=1",
            "X-Hub-Signature-256": "sha256=ff",
            "Webhook-Signature": "v1,xx",
            "X-Api-Key": "k",
            "Webhook-Id": "msg_1",
        }
    )
    assert masked["Webhook-Id"] == "msg_1"
    for name in (
        "Authorization",
        "Cookie",
        "X-Hub-Signature-256",
        "Webhook-Signature",
        "X-Api-Key",
    ):
        assert masked[name].startswith("••••"), name


def test_mask_personal_by_key_and_by_value() -> None:
    obj = {
        "email": "a@b.co",
        "note": "write to ada@example.com",
        "phone": "+44 20 7946 0958",
        "customer_details": {"name": "Ada", "address": {"line1": "1 Road", "city": "London"}},
        "api_version": "2024-06-20",
        "amount": 1999,
        "type": "charge.succeeded",
        "context": {"library": {"name": "bridge", "version": "0.1.0"}},
    }
    masked, count = mask_personal(obj)
    assert count == 6
    assert masked["api_version"] == "2024-06-20"
    assert masked["amount"] == 1999
    assert masked["type"] == "charge.succeeded"
    assert masked["context"]["library"]["name"] == "bridge"
    assert "ada@example.com" not in orjson.dumps(masked).decode()


def test_detail_keys_are_capped_by_count_and_expire(redis: Redis, redis_url: str) -> None:
    details = record.Details(redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION="10"))
    cap = 40  # 10 entries x DETAILS_PER_ENTRY (4)
    assert record.DETAILS_PER_ENTRY == 4
    details.write([(record.call_key(f"m{n}"), b"{}") for n in range(100)])
    assert redis.llen(record.DETAILS) == cap
    assert not redis.exists(record.call_key("m0"))
    assert not redis.exists(record.call_key("m59"))
    assert redis.exists(record.call_key("m60"))
    assert 0 < redis.ttl(record.call_key("m99")) <= 86400


def test_delivery_records_what_an_event_became(redis: Redis, redis_url: str) -> None:
    recorder = record.DeliveryRecorder(redis, settings(redis_url))
    env = Envelope(source="shop", id="evt_1", type="order.paid", time=1, received_at=1, body={})
    body = b'{"id": "evt_1", "note": "\\",\\"body\\":x"}'  # as the provider sent it
    raw = Envelope.encode(
        source="shop", id="evt_1", type='o,"body":', time=1, received_at=1, raw=body
    )
    call = {"type": "track", "messageId": "shop:evt_1:order-paid:0", "userId": "u1"}
    recorder.mapped(env, [call], raw)
    recorder.commit([], done=True)
    detail = orjson.loads(redis.get(record.event_key("shop", "evt_1")) or b"null")
    assert detail["calls"] == [call]
    # The payload byte for byte, though the type and the body spell `,"body":` too.
    assert detail["payload"] == body.decode()
    state = orjson.loads(redis.get(record.call_key(call["messageId"])) or b"null")
    assert state["state"] == "waiting"
    recorder.on_flush(
        FlushEvent(
            "flushed", batch_id="b1", calls=1, attempt=1, status=200, payload=orjson.dumps([call])
        )
    )
    state = orjson.loads(redis.get(record.call_key(call["messageId"])) or b"null")
    assert (state["state"], state["batch"]) == ("sent", "b1")
    assert redis.hget(record.COLLECTOR, "status") == b"200"


def test_a_chunk_handed_back_is_not_recorded(redis: Redis, redis_url: str) -> None:
    recorder = record.DeliveryRecorder(redis, settings(redis_url))
    env = Envelope(source="shop", id="evt_2", type="order.paid", time=1, received_at=1, body={})
    recorder.mapped(env, [{"type": "track", "messageId": "m2"}], b"{}")
    recorder.commit([], done=False)
    assert not redis.exists(record.event_key("shop", "evt_2"))
    recorder.commit([], done=True)  # nothing left over from the handed-back chunk
    assert not redis.exists(record.event_key("shop", "evt_2"))


def test_retries_and_refusals_are_recorded_per_call(redis: Redis, redis_url: str) -> None:
    recorder = record.DeliveryRecorder(redis, settings(redis_url))
    call = {"type": "track", "messageId": "m-retry"}
    payload = orjson.dumps([call])
    recorder.on_flush(
        FlushEvent(
            "err",
            batch_id="b2",
            calls=1,
            attempt=3,
            error="503 busy",
            reason="server_error",
            outcome="retry",
            retry_in=4.0,
            payload=payload,
        )
    )
    state = orjson.loads(redis.get(record.call_key("m-retry")) or b"null")
    assert (state["state"], state["attempt"], state["retry_in"]) == ("retrying", 3, 4.0)
    assert state["answer"] == "503 busy"
    recorder.on_flush(
        FlushEvent(
            "err",
            batch_id="b2",
            calls=1,
            attempt=4,
            error="400 invalid",
            reason="bad_request",
            outcome="dead_letter",
            payload=payload,
        )
    )
    state = orjson.loads(redis.get(record.call_key("m-retry")) or b"null")
    assert (state["state"], state["answer"]) == ("dead", "400 invalid")
    assert redis.hget(record.COLLECTOR, "error") == b"400 invalid"


def test_headers_from_a_wsgi_environ_are_named_and_masked() -> None:
    from bridge.console.mask import environ_headers

    environ = {
        "HTTP_STRIPE_SIGNATURE": "t=1,v1=abc",
        "HTTP_USER_AGENT": "Stripe/1.0",
        "HTTP_X_API_KEY": "k-123",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "12",
        "REQUEST_METHOD": "POST",
        "wsgi.input": object(),
    }
    assert environ_headers(environ) == {
        "Stripe-Signature": "•••• (10 chars, masked)",
        "User-Agent": "Stripe/1.0",
        "X-Api-Key": "•••• (5 chars, masked)",
        "Content-Type": "application/json",
        "Content-Length": "12",
    }


def test_a_lone_webhook_is_written_without_further_requests(redis: Redis, redis_url: str) -> None:
    from tests.processes import wait_until

    recorder = record.IntakeRecorder(redis, settings(redis_url))
    webhook(recorder, 1)
    assert redis.xlen(record.LOG) == 0  # buffered: the request did not wait for Redis
    wait_until(lambda: redis.xlen(record.LOG) == 1, timeout=10, what="the timer's write")


def test_a_full_buffer_is_written_by_the_request_that_fills_it(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record, "FLUSH_EVERY", 600.0)  # only the count triggers here
    recorder = record.IntakeRecorder(redis, settings(redis_url))
    for n in range(record.FLUSH_AT - 1):
        webhook(recorder, n)
    assert not redis.exists(record.LOG)
    webhook(recorder, 99)
    assert redis.xlen(record.LOG) == record.FLUSH_AT


def test_exact_amounts_are_recorded_digit_for_digit(redis: Redis, redis_url: str) -> None:
    # money() gives Decimals; recording a chunk's calls must neither fail (which would
    # fail the drain job after its chunk was committed) nor round them.
    recorder = record.DeliveryRecorder(redis, settings(redis_url))
    env = Envelope(source="shop", id="evt_2", type="order.paid", time=1, received_at=1, body={})
    amount = Decimal("123456789012345678.91")
    call = {"type": "track", "messageId": "shop:evt_2:0", "userId": "u1"}
    recorder.mapped(env, [{**call, "properties": {"total": amount}}], b"{}")
    recorder.commit([], done=True)
    raw = redis.get(record.event_key("shop", "evt_2")) or b""
    assert b'"total":123456789012345678.91' in raw


STRIPE_ENVIRON = {
    "HTTP_STRIPE_SIGNATURE": "t=1,v1=abc",
    "CONTENT_TYPE": "application/json",
    "HTTP_USER_AGENT": "Stripe/1.0",
    "wsgi.url_scheme": "https",
}


def stored(recorder: record.IntakeRecorder, event_id: str, outcome: str = "accepted") -> None:
    recorder.stored(
        source="stripe",
        event_id=event_id,
        event_type="charge.succeeded",
        outcome=outcome,
        ms=0.25,
        size=17,
        environ=STRIPE_ENVIRON,
    )


def test_stored_events_are_written_as_one_burst(redis: Redis, redis_url: str) -> None:
    from bridge.console import data

    recorder = record.IntakeRecorder(redis, settings(redis_url))
    stored(recorder, "evt_s1")
    stored(recorder, "evt_s1", "duplicate")
    stored(recorder, "evt_s2")
    webhook(recorder, 7)  # rejected: an entry of its own, with its body
    assert recorder.flush() == 4
    # One stream entry for the burst of stored events, one for the rejected webhook.
    assert redis.xlen(record.LOG) == 2
    newest_first = data.entries(redis, data.Filters())
    assert [(e.event_id, e.outcome) for e in newest_first] == [
        ("evt_s2", "accepted"),
        ("evt_s1", "duplicate"),
        ("evt_s1", "accepted"),
        ("evt_7", "accepted"),
    ]
    burst = newest_first[0]
    # Headers masked; the payload is left to the worker (it is in the envelope).
    assert burst.headers["Stripe-Signature"] == "•••• (10 chars, masked)"
    assert burst.headers["User-Agent"] == "Stripe/1.0"
    assert burst.body == b""
    assert b"v1=abc" not in b"".join(v for _, f in redis.xrange(record.LOG) for v in f.values())
    # Each has an id of its own: found again by it, and usable as a cursor both ways.
    assert data.entry(redis, newest_first[1].id) == newest_first[1]
    assert data.entries(redis, data.Filters(), before=newest_first[1].id) == newest_first[2:]
    assert data.entries_after(redis, newest_first[2].id, data.Filters()) == newest_first[:2]
    assert data.last_id(redis) == newest_first[0].id
    now = time.time()
    counts: dict[bytes, int] = {}
    for key in (record.minute_key(now - 60), record.minute_key(now)):  # a boundary
        for field, n in redis.hgetall(key).items():
            counts[field] = counts.get(field, 0) + int(n)
    assert counts == {
        b"wh|stripe|accepted": 3,
        b"wh|stripe|duplicate": 1,
    }
    assert abs(float(redis.hget(record.LAST, "stripe") or 0) - now) < 60


def test_bursts_count_toward_the_cap_webhook_by_webhook(redis: Redis, redis_url: str) -> None:
    from bridge.console import data

    recorder = record.IntakeRecorder(redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION="10"))
    for burst in range(5):  # five bursts of 4 stored events: 20 webhooks
        for n in range(4):
            stored(recorder, f"evt_{burst}_{n}")
        recorder.flush()
    kept = [e.event_id for e in data.entries(redis, data.Filters())]
    # The newest 10 are kept; a burst goes whole, so 12 (the last three bursts).
    assert kept == [f"evt_{b}_{n}" for b in (4, 3, 2) for n in (3, 2, 1, 0)]


def test_entries_without_a_count_are_trimmed_first(redis: Redis, redis_url: str) -> None:
    from bridge.console import data

    recorder = record.IntakeRecorder(redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION="10"))
    for n in range(8):  # written by a release before: no running count
        meta = orjson.dumps({"kind": "webhook", "eid": f"old_{n}", "t": time.time()})
        redis.xadd(record.LOG, {"m": meta, "h": b"{}", "b": b""})
    for burst in range(3):
        for n in range(4):
            stored(recorder, f"new_{burst}_{n}")
        recorder.flush()
    kept = [e.event_id for e in data.entries(redis, data.Filters())]
    assert kept == [f"new_{b}_{n}" for b in (2, 1, 0) for n in (3, 2, 1, 0)]


def test_an_action_keeps_the_count_going(redis: Redis, redis_url: str) -> None:
    from bridge.console import data

    recorder = record.IntakeRecorder(redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION="10"))
    for burst in "abc":
        for n in range(5):
            stored(recorder, f"{burst}_{n}")
        recorder.flush()
        if burst == "a":
            data.action(redis, 3600, 10, "replayed", "1 dead letter")  # counts no webhook
    # 15 webhooks, the newest 10 kept: bursts b and c; a and the action are older.
    kept = [e.event_id for e in data.entries(redis, data.Filters())]
    assert kept == [f"{b}_{n}" for b in "cb" for n in range(4, -1, -1)]


def test_ids_from_the_address_bar_are_checked() -> None:
    from bridge.console import data

    assert data.valid_id("1764500000000-0")
    assert data.valid_id("1764500000000-0.12")
    for bad in ("", "+", "-", "1-", "1-x", "1-0.", "1-0.x", "1-0.1.2", "(1-0", "1" * 80 + "-0"):
        assert not data.valid_id(bad), bad


def test_workers_trim_the_log_by_age(redis: Redis, redis_url: str) -> None:
    # The accept script only caps the log by count; what a worker writes trims it by
    # age, so a stream of accepted events alone still ages out.
    recorder = record.DeliveryRecorder(
        redis, settings(redis_url, BRIDGE_CONSOLE_RETENTION_AGE="3600")
    )
    two_hours_ago = int((time.time() - 7200) * 1000)
    redis.xadd(record.LOG, {"m": b"{}", "o": b"accepted", "h": b"{}"}, id=f"{two_hours_ago}-0")
    redis.xadd(record.LOG, {"m": b"{}", "o": b"accepted", "h": b"{}"})
    env = Envelope(source="shop", id="evt_9", type="order.paid", time=1, received_at=1, body={})
    recorder.mapped(env, [], b"{}")
    recorder.commit([], done=True)
    assert redis.xlen(record.LOG) == 1
