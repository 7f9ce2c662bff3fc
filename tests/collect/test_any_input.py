"""Any input at all gets a 2xx or a 4xx from the collection API, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from tests.collect.conftest import KEY, basic

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
call_keys = st.sampled_from(
    ["type", "userId", "anonymousId", "event", "name", "groupId", "previousId", "messageId",
     "timestamp", "properties", "traits", "context", "integrations", "writeKey", "sentAt"]
)  # fmt: skip
calls = st.dictionaries(call_keys, json_values, max_size=8) | json_values
OK = {200, 400, 401, 403, 404, 413, 429}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(calls, max_size=5), path=st.sampled_from(["batch", "t", "identify", "g"]))
def test_any_json_gets_a_4xx_or_2xx(app: Flask, redis: Redis, batch: list[Any], path: str) -> None:
    body: Any = {"batch": batch} if path == "batch" else (batch[0] if batch else {})
    resp = app.test_client().post(f"/v1/{path}", data=json.dumps(body), headers=basic(KEY))
    assert resp.status_code in OK, resp.get_data(as_text=True)


def test_deep_nesting_and_garbage_are_4xx(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    deep = b'{"userId": "u", "event": "E", "properties": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    for body in (
        deep,
        b"\xff\xfe",
        b"",
        b"null",
        b'{"batch": [' + b"[" * 3000 + b"]" * 3000 + b"]}",
    ):
        resp = client.post("/v1/track", data=body, headers=basic(KEY))
        assert 400 <= resp.status_code < 500, (body[:20], resp.status_code)
    nested = {"userId": "u", "event": "E", "properties": {"x": json.loads("[" * 300 + "]" * 300)}}
    resp = client.post("/v1/track", data=json.dumps(nested), headers=basic(KEY))
    assert resp.status_code == 200  # the unencodable member is dropped, the call kept
