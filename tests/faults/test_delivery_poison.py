"""Poison events of every shape through the whole pipeline: signed webhooks into the
real intake app, a real ``rq worker``, the local collector.

The promise (BRIEF 3 and 6): an event that cannot be processed lands in the dead-letter
store with its reason while every event around it is delivered; nothing is stuck,
nothing piles up in Redis (no failed RQ jobs, no claims, an empty inbox).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

import orjson
import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq.registry import FailedJobRegistry

from bridge import keys
from bridge.delivery.deadletter import DeadLetters
from bridge.devtools.collector import Collector
from bridge.envelope import Envelope
from bridge.intake import create_app
from tests.delivery import support
from tests.delivery.support import Worker, message_id, wait_until
from tests.signing import stripe_headers

pytestmark = pytest.mark.e2e

StartWorker = Callable[[dict[str, str]], Worker]

#: The shop mapping's secret (tests/delivery/mappings/shop.yaml).
SHOP_SECRET = "whsec_delivery_tests_only"


def nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def order(i: int, *, user: object = "u", padding: object = "") -> bytes:
    """A shop order event (the stdlib writes any depth; orjson stops at 254)."""
    meta = {} if user is None else {"user_id": f"u{i}" if user == "u" else user}
    obj = {"id": f"ord_{i}", "metadata": meta, "padding": padding}
    event = {"id": f"evt_{i}", "type": "order.paid", "created": 1700000000, "data": {"object": obj}}
    return json.dumps(event).encode()


#: Signed, verified events that no mapping can turn into a sendable call, by the
#: reason their dead letter must give. Event ids 100+ (the good ones are 0..29).
POISON_WEBHOOKS: dict[int, tuple[bytes, str]] = {
    100: (order(100, padding=nested(300)), "mapping_error: call cannot be encoded as JSON"),
    101: (order(101, padding="x" * 40_000), "call_too_large"),
    102: (order(102, user=None), "mapping_error"),
    103: (order(103, user={"nested": "object"}), "mapping_error"),
    104: (order(104, padding=nested(253)), "mapping_error: call cannot be encoded as JSON"),
}


def raw_envelope(i: int, body: bytes, source: str = "shop") -> bytes:
    head = json.dumps(
        {
            "source": source,
            "id": f"evt_{i}",
            "type": "order.paid",
            "time": 1.7e9,
            "received_at": time.time(),
        }
    ).encode()
    return head[:-1] + b',"body":' + body + b"}"


#: What no intake writes but a bug, an old version or a hand-edited Redis could leave in
#: the inbox, by the reason prefix of its dead letter.
POISON_ENVELOPES: list[tuple[bytes, str]] = [
    (b"not json at all", "malformed_envelope"),
    (b"\xff\xfe\x00 not utf-8", "malformed_envelope"),
    (b'{"source": "shop"}', "malformed_envelope"),
    (raw_envelope(200, b'{"padding": "\\ud800"}'), "malformed_envelope"),
    (raw_envelope(201, order(201), source="nope"), "unknown_source"),
]


def post(client: FlaskClient, body: bytes) -> int:
    return client.post(
        "/webhooks/shop", data=body, headers=stripe_headers(body, SHOP_SECRET)
    ).status_code


def test_poison_events_are_dead_lettered_and_the_rest_flows(
    redis: Redis,
    redis_url: str,
    collector: Collector,
    workers: StartWorker,
) -> None:
    environ = support.env(redis_url, collector.url, BRIDGE_DRAIN_CHUNK="8")
    app = create_app(support.settings(redis_url, collector.url), log_stream=io.StringIO())
    client = app.test_client()
    workers(environ)
    good = list(range(30))
    poison = iter(sorted(POISON_WEBHOOKS))
    for i in good:  # a poison event between good ones, in the same chunks
        assert post(client, order(i)) == 200
        if i % 6 == 3:
            assert post(client, POISON_WEBHOOKS[next(poison)][0]) == 200
    redis.rpush(keys.INBOX, *(raw for raw, _ in POISON_ENVELOPES))
    for i in range(30, 40):  # and good events after them
        assert post(client, order(i)) == 200
    good += list(range(30, 40))

    assert collector.wait_for_ids({message_id(i) for i in good}, timeout=30)
    store = DeadLetters(redis)
    wait_until(
        lambda: len(store) == len(POISON_WEBHOOKS) + len(POISON_ENVELOPES),
        timeout=15,
        what="every poison event in the dead-letter store",
    )
    assert set(collector.message_ids()) == {message_id(i) for i in good}
    reasons = {e.event_id: e.reason for e in store if e.event_id and e.event_id.startswith("evt_1")}
    for i, (_, reason) in POISON_WEBHOOKS.items():
        assert reasons[f"evt_{i}"].startswith(reason), (i, reasons[f"evt_{i}"])
    other = sorted(
        e.reason.split(":")[0] for e in store if not (e.event_id or "").startswith("evt_1")
    )
    assert other == sorted(reason for _, reason in POISON_ENVELOPES)
    # Nothing stuck, nothing piling up.
    assert redis.llen(keys.INBOX) == 0
    assert redis.zcard(keys.INBOX_CLAIMS) == 0
    assert FailedJobRegistry(keys.QUEUE, connection=redis).count == 0
    assert not redis.exists(keys.DRAIN_HEALTH)


def test_an_envelope_with_a_lone_surrogate_is_what_we_think_it_is() -> None:
    # The shape above must really be undecodable, or the test would prove nothing.
    with pytest.raises(orjson.JSONDecodeError, match="surrogate"):
        Envelope.decode(raw_envelope(200, b'{"padding": "\\ud800"}'))
