"""The collection API against the real app and a real Redis: what is stored in the outbox
is exactly what the Segment spec and the source's policies say, and nothing else."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from redis import Redis

from bridge.collect.validate import iso
from tests.collect.conftest import KEY, OLD_KEY, ORIGIN, basic, outbox

TRACK = {
    "type": "track",
    "userId": "u1",
    "event": "Order Completed",
    "messageId": "client-msg-1",
    "timestamp": "2026-11-30T10:00:00.000Z",
    "properties": {"revenue": 9.5, "currency": "EUR"},
    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
}


def test_a_server_track_with_basic_auth_is_stored_as_sent_with_its_own_message_id(
    app: Flask, redis: Redis
) -> None:
    resp = app.test_client().post("/v1/track", json=TRACK, headers=basic(KEY))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"success": True}
    assert outbox(redis) == [
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "messageId": "client-msg-1",
            "timestamp": "2026-11-30T10:00:00.000Z",
            "properties": {"revenue": 9.5, "currency": "EUR"},
            # The client's own library is kept; the client's address is added like Segment.
            "context": {
                "library": {"name": "analytics-python", "version": "2.3.3"},
                "ip": "127.0.0.1",
            },
        }
    ]


def test_the_previous_key_still_works_during_rotation(app: Flask, redis: Redis) -> None:
    resp = app.test_client().post("/v1/track", json=TRACK, headers=basic(OLD_KEY))
    assert resp.status_code == 200
    assert len(outbox(redis)) == 1


def test_wrong_or_missing_write_key_is_401_and_stores_nothing(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    assert client.post("/v1/track", json=TRACK, headers=basic("wk_wrong")).status_code == 401
    assert client.post("/v1/track", json=TRACK).status_code == 401
    resp = client.post("/v1/t", data=json.dumps({**TRACK, "writeKey": "nope"}))
    assert resp.status_code == 401
    assert resp.get_json()["reason"] == "bad_write_key"
    assert outbox(redis) == []


def test_analytics_js_short_path_text_plain_with_the_key_inside_and_cors(
    app: Flask, redis: Redis
) -> None:
    body = {**TRACK, "writeKey": KEY, "sentAt": "2026-11-30T10:00:01.000Z"}
    resp = app.test_client().post(
        "/v1/t",
        data=json.dumps(body),
        headers={"Content-Type": "text/plain", "Origin": ORIGIN},
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in resp.headers["Vary"]
    [call] = outbox(redis)
    assert "writeKey" not in call
    assert "sentAt" not in call
    assert call["messageId"] == "client-msg-1"


def test_a_foreign_origin_is_refused_without_cors_headers(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    body = json.dumps({**TRACK, "writeKey": KEY})
    resp = client.post("/v1/t", data=body, headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert resp.get_json()["reason"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in resp.headers
    pre = client.options("/v1/t", headers={"Origin": "https://evil.example"})
    assert pre.status_code == 403
    assert "Access-Control-Allow-Origin" not in pre.headers
    assert outbox(redis) == []


def test_preflight_for_an_allowed_origin(app: Flask) -> None:
    resp = app.test_client().options(
        "/v1/batch",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


def test_localhost_only_when_the_source_allows_it(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    body = json.dumps({**TRACK, "writeKey": KEY})
    local = {"Origin": "http://localhost:3000"}
    assert make_app().test_client().post("/v1/t", data=body, headers=local).status_code == 403
    allowed = make_app(SHOP_LOCALHOST="true").test_client()
    assert allowed.post("/v1/t", data=body, headers=local).status_code == 200


def test_a_blocked_ip_range_is_refused(make_app: Callable[..., Flask], redis: Redis) -> None:
    app = make_app(SHOP_BLOCKED="127.0.0.0/8")
    resp = app.test_client().post("/v1/track", json=TRACK, headers=basic(KEY))
    assert resp.status_code == 403
    assert resp.get_json()["reason"] == "ip_blocked"
    assert outbox(redis) == []


def test_a_batch_keeps_its_valid_calls_and_names_each_refused_one(
    app: Flask, redis: Redis
) -> None:
    batch = [
        {**TRACK, "messageId": "m0"},
        {"type": "track", "userId": "u1", "messageId": "m1"},  # no event name
        {"type": "identify", "anonymousId": "a1", "messageId": "m2", "traits": {"plan": "pro"}},
        {"type": "page", "messageId": "m3"},  # no identity
        {"type": "teleport", "userId": "u1", "messageId": "m4"},
        {"type": "group", "userId": "u1", "messageId": "m5", "groupId": "g1"},
        {"type": "track", "userId": "u1", "event": "E", "messageId": "m6", "timestamp": "soon"},
        {"type": "track", "userId": "u1", "event": "E", "messageId": "m7", "properties": [1]},
    ]
    resp = app.test_client().post("/v1/batch", json={"batch": batch}, headers=basic(KEY))
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["accepted"] == 3
    assert [(e["index"], e["messageId"]) for e in body["errors"]] == [
        (1, "m1"),
        (3, "m3"),
        (4, "m4"),
        (6, "m6"),
        (7, "m7"),
    ]
    reasons = [e["error"] for e in body["errors"]]
    assert "event name" in reasons[0]
    assert "userId or an anonymousId" in reasons[1]
    assert "teleport" in reasons[2]
    assert "ISO-8601" in reasons[3]
    assert "properties must be an object" in reasons[4]
    assert [c["messageId"] for c in outbox(redis)] == ["m0", "m2", "m5"]


def test_a_repeated_message_id_is_stored_once(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    for _ in range(3):
        assert client.post("/v1/track", json=TRACK, headers=basic(KEY)).status_code == 200
    assert [c["messageId"] for c in outbox(redis)] == ["client-msg-1"]
    # Remembered for the source's collect.dedup_ttl (3600 s), not BRIDGE_DEDUP_TTL.
    assert 3590 <= redis.ttl("bridge:dedup:shop:client-msg-1") <= 3600


def test_a_call_without_message_id_or_timestamp_gets_them(app: Flask, redis: Redis) -> None:
    call = {"userId": "u1", "event": "Signed Up"}
    before = datetime.now(UTC)
    resp = app.test_client().post(
        "/v1/track", json={**call, "sentAt": "2026-11-30T09:00:00Z"}, headers=basic(KEY)
    )
    after = datetime.now(UTC)
    assert resp.status_code == 200
    [stored] = outbox(redis)
    assert len(stored["messageId"]) == 36  # a UUID
    # No timestamp: the call happened when it was sent, i.e. when bridge received it.
    stamped = datetime.fromisoformat(stored["timestamp"].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= stamped <= after
    assert "originalTimestamp" not in stored


def test_the_clients_clock_skew_is_taken_out_of_the_timestamp(app: Flask, redis: Redis) -> None:
    # A device whose clock is one hour fast: the event happened 5 s before it was sent.
    fast = datetime.now(UTC) + timedelta(hours=1)
    happened, sent = fast - timedelta(seconds=5), fast
    body = {
        "batch": [{"type": "track", "userId": "u1", "event": "E", "timestamp": iso(happened)}],
        "sentAt": iso(sent),
    }
    before = datetime.now(UTC)
    assert app.test_client().post("/v1/batch", json=body, headers=basic(KEY)).status_code == 200
    after = datetime.now(UTC)
    [stored] = outbox(redis)
    assert stored["originalTimestamp"] == iso(happened)
    corrected = datetime.fromisoformat(stored["timestamp"].replace("Z", "+00:00"))
    # timestamp = received - (sentAt - timestamp) = received - 5 s, received in [before, after]
    slack = timedelta(milliseconds=2)  # iso() keeps milliseconds
    five = timedelta(seconds=5)
    assert before - five - slack <= corrected <= after - five + slack


def test_strings_are_trimmed_and_identities_bounded(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    resp = client.post(
        "/v1/track", json={"userId": "  u1 ", "event": " Clicked\n"}, headers=basic(KEY)
    )
    assert resp.status_code == 200
    [stored] = outbox(redis)
    assert (stored["userId"], stored["event"]) == ("u1", "Clicked")
    resp = client.post("/v1/track", json={"userId": "u" * 101, "event": "E"}, headers=basic(KEY))
    assert resp.status_code == 400
    assert "userId is 101 characters" in resp.get_json()["errors"][0]["error"]


def test_oversized_members_are_dropped_and_counted_oversized_calls_refused(
    app: Flask, redis: Redis
) -> None:
    client = app.test_client()
    big = "x" * (17 * 1024)
    call = {"userId": "u1", "event": "E", "messageId": "big", "properties": {"blob": big, "k": 1}}
    assert client.post("/v1/track", json=call, headers=basic(KEY)).status_code == 200
    [stored] = outbox(redis)
    assert stored["properties"] == {"k": 1}
    assert redis.hget(
        "bridge:metrics", "bridge_collect_dropped_total|source=shop,reason=too_large"
    ) == b"1"
    # Three members of 12 KB each: none too large alone, the call over 32 KB.
    parts = {f"p{i}": "y" * (12 * 1024) for i in range(3)}
    resp = client.post(
        "/v1/track", json={"userId": "u1", "event": "E", "properties": parts}, headers=basic(KEY)
    )
    assert resp.status_code == 400
    assert "limit is 32768" in resp.get_json()["errors"][0]["error"]


def test_malformed_and_oversized_bodies_are_4xx(app: Flask, redis: Redis) -> None:
    client = app.test_client()
    auth = basic(KEY)
    assert client.post("/v1/track", data=b"{not json", headers=auth).status_code == 400
    assert client.post("/v1/track", data=b"[1, 2]", headers=auth).status_code == 400
    nan = b'{"userId": "u1", "event": "E", "properties": {"x": NaN}}'
    assert client.post("/v1/track", data=nan, headers=auth).status_code == 400
    assert client.post("/v1/batch", json={"batch": "no"}, headers=auth).status_code == 400
    huge = json.dumps({"batch": [], "pad": "z" * (500 * 1024)})
    resp = client.post("/v1/batch", data=huge, headers=auth)
    assert resp.status_code == 413
    assert client.post("/v1/nothing", json=TRACK, headers=auth).status_code == 404
    assert outbox(redis) == []


def test_numbers_must_be_finite_and_readable(app: Flask, redis: Redis) -> None:
    body = b'{"userId": "u1", "event": "E", "messageId": "n", "properties": {"a": 1e999, "b": 2}}'
    resp = app.test_client().post("/v1/track", data=body, headers=basic(KEY))
    assert resp.status_code == 200
    assert outbox(redis)[0]["properties"] == {"b": 2}


def test_rate_limit_per_ip_is_429_with_retry_after(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    client = make_app(SHOP_PER_IP="2").test_client()
    codes = [
        client.post("/v1/track", json={**TRACK, "messageId": f"r{i}"}, headers=basic(KEY))
        for i in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert 1 <= int(codes[2].headers["Retry-After"]) <= 60
    assert [c["messageId"] for c in outbox(redis)] == ["r0", "r1"]


def test_rate_limit_per_key(make_app: Callable[..., Flask], redis: Redis) -> None:
    client = make_app(SHOP_PER_KEY="1").test_client()
    assert client.post("/v1/track", json=TRACK, headers=basic(KEY)).status_code == 200
    assert client.post("/v1/track", json=TRACK, headers=basic(KEY)).status_code == 429


def test_rules_drop_and_transform_calls(app: Flask, redis: Redis) -> None:
    batch = [
        {"type": "track", "userId": "u1", "event": "Internal Ping", "messageId": "drop-me"},
        {"type": "track", "userId": "u1", "event": "Upgraded", "messageId": "keep",
         "properties": {"plan": "pro"}},
    ]  # fmt: skip
    resp = app.test_client().post("/v1/batch", json={"batch": batch}, headers=basic(KEY))
    assert resp.status_code == 200
    [stored] = outbox(redis)
    assert stored["messageId"] == "keep"
    assert stored["properties"] == {"plan": "pro", "plan_upper": "PRO"}


def test_privacy_hashes_drops_and_applies_consent(app: Flask, redis: Redis) -> None:
    batch = [
        {"type": "identify", "userId": "u1", "messageId": "hashed",
         "traits": {"email": "  Jane@Example.COM ", "phone": "+1 555"},
         "context": {"traits": {"email": "jane@example.com"}}},
        {"type": "track", "userId": "u1", "event": "Signed In", "messageId": "pw",
         "properties": {"password": "hunter2", "method": "email"}},
        {"type": "track", "userId": "u1", "event": "Ad Clicked", "messageId": "no-ads",
         "context": {"consent": {"categoryPreferences": {"Advertising": False}}}},
        {"type": "identify", "userId": "u1", "messageId": "no-personal",
         "traits": {"phone": "+1 555", "plan": "pro"},
         "context": {"consent": {"categoryPreferences": {"Personalization": False,
                                                         "Advertising": True}}}},
    ]  # fmt: skip
    resp = app.test_client().post("/v1/batch", json={"batch": batch}, headers=basic(KEY))
    assert resp.status_code == 200
    by_id = {c["messageId"]: c for c in outbox(redis)}
    # SHA-256 of the normalised (trimmed, lower-cased) address.
    digest = hashlib.sha256(b"jane@example.com").hexdigest()
    assert by_id["hashed"]["traits"] == {"email": digest, "phone": "+1 555"}
    assert by_id["hashed"]["context"]["traits"] == {"email": digest}
    assert by_id["pw"]["properties"] == {"method": "email"}
    assert "no-ads" not in by_id
    assert by_id["no-personal"]["traits"] == {"plan": "pro"}
    assert redis.hget(
        "bridge:metrics",
        "bridge_collect_dropped_total|source=shop,reason=consent_denied: Advertising",
    ) == b"1"


def test_settings_endpoint_points_analytics_js_back_here(app: Flask) -> None:
    client = app.test_client()
    resp = client.get(f"/v1/projects/{KEY}/settings", headers={"Origin": ORIGIN})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    segment = resp.get_json()["integrations"]["Segment.io"]
    assert segment["apiKey"] == KEY
    assert segment["apiHost"] == "localhost/v1"
    assert segment["protocol"] == "http"
    assert client.get("/v1/projects/wk_wrong/settings").status_code == 404


def test_503_when_redis_cannot_take_the_calls(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", BRIDGE_REDIS_TIMEOUT="0.3")
    resp = app.test_client().post("/v1/track", json=TRACK, headers=basic(KEY))
    assert resp.status_code == 503
    assert resp.get_json()["reason"] == "unavailable"


def test_collection_is_off_without_a_segment_source(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    app = make_app(SHOP_WRITE_KEYS="")
    resp = app.test_client().post("/v1/track", json=TRACK, headers=basic(KEY))
    assert resp.status_code == 404
    assert resp.get_json()["reason"] == "collection_off"


def test_a_collection_source_takes_no_webhooks(app: Flask) -> None:
    resp = app.test_client().post("/webhooks/shop", data=b"{}")
    assert resp.status_code == 404
    assert resp.get_json()["reason"] == "not_a_webhook_source"


def test_the_shipped_site_source_is_on_with_bridge_write_keys(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    app = make_app(
        SHOP_WRITE_KEYS="", BRIDGE_WRITE_KEYS="wk_a,wk_b", BRIDGE_ALLOWED_ORIGINS=ORIGIN
    )
    client = app.test_client()
    body = json.dumps({**TRACK, "writeKey": "wk_b"})
    assert client.post("/v1/t", data=body, headers={"Origin": ORIGIN}).status_code == 200
    other = {"Origin": "https://elsewhere.example"}
    assert client.post("/v1/t", data=body, headers=other).status_code == 403
    assert len(outbox(redis)) == 1


def test_gzip_bodies_are_read(app: Flask, redis: Redis) -> None:
    body = gzip.compress(json.dumps({"batch": [TRACK]}).encode())
    headers = {**basic(KEY), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    client = app.test_client()
    assert client.post("/v1/batch", data=body, headers=headers).status_code == 200
    assert [c["messageId"] for c in outbox(redis)] == ["client-msg-1"]
    bomb = gzip.compress(b'{"batch": [], "pad": "' + b"z" * (600 * 1024) + b'"}')
    assert client.post("/v1/batch", data=bomb, headers=headers).status_code == 413
    assert client.post("/v1/batch", data=b"not gzip", headers=headers).status_code == 400


def test_behind_a_proxy_the_client_ip_comes_from_x_forwarded_for(
    make_app: Callable[..., Flask], redis: Redis
) -> None:
    app = make_app(SHOP_WRITE_KEYS="", BRIDGE_WRITE_KEYS="wk_p", BRIDGE_FORWARDED_HOPS="1")
    headers = {**basic("wk_p"), "X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    assert app.test_client().post("/v1/track", json=TRACK, headers=headers).status_code == 200
    # One proxy hop: the right-most address is the one the proxy saw.
    assert outbox(redis)[0]["context"]["ip"] == "203.0.113.9"
