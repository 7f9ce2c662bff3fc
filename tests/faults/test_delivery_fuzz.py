"""Fuzzing the worker's side: whatever a verified event's body holds, and whatever bytes
sit in the inbox, mapping a chunk never raises, and every event ends either mapped
(its calls encoded for the outbox) or as exactly one storable dead letter."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.delivery import jobs
from bridge.delivery.deadletter import DeadLetter
from bridge.delivery.inbox import Claim
from bridge.delivery.runtime import Runtime
from bridge.envelope import Envelope
from tests.delivery.conftest import make_runtime, runtime  # noqa: F401 (fixtures)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits both ways
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
) | st.integers(min_value=0, max_value=400).map(nested)


def envelope(i: int, padding: Any, user: Any) -> bytes:
    obj = {"id": f"ord_{i}", "metadata": {"user_id": user}, "padding": padding}
    body = {"id": f"evt_{i}", "type": "order.paid", "created": 1700000000, "data": {"object": obj}}
    return Envelope.encode(
        source="shop",
        id=f"evt_{i}",
        type="order.paid",
        time=1700000000.0,
        received_at=time.time(),
        raw=json.dumps(body).encode(),  # the stdlib writes what orjson would refuse
    )


events = st.one_of(
    st.builds(envelope, st.integers(0, 10**6), json_values, json_values | st.just("u1")),
    st.binary(max_size=64),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunk=st.lists(events, min_size=1, max_size=8))
def test_every_event_is_mapped_or_dead_lettered_once(
    runtime: Runtime,  # noqa: F811
    chunk: list[bytes],
) -> None:
    mapped: Counter[str] = Counter()
    items, dead = jobs.map_claim(runtime, Claim("fuzz", chunk), mapped)
    event_letters = [d for d in dead if d.kind == "event"]
    assert sum(mapped.values()) + len(event_letters) == len(chunk)
    assert len(items) <= sum(mapped.values())  # one call per mapped order at most
    for entry in dead:
        assert DeadLetter.from_json(entry.to_json()).reason == entry.reason
