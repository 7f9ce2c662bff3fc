"""POST /webhooks/<source> through the real app and the real test Redis.

Every provider is exercised through the same list of attacks: each case says how the
provider signs, so the tests below run once per provider.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from bridge import keys
from bridge.envelope import Envelope
from tests.intake.conftest import LogLines
from tests.signing import (
    CLERK_SECRET,
    CLERK_SECRET_NEXT,
    GITHUB_SECRET,
    GITHUB_SECRET_NEXT,
    STRIPE_SECRET,
    STRIPE_SECRET_NEXT,
    clerk_event,
    github_event,
    github_headers,
    standard_headers,
    stripe_event,
    stripe_headers,
)


@dataclass(frozen=True)
class Case:
    """How one provider's webhooks are made and signed."""

    source: str
    env_var: str
    secret: str
    next_secret: str
    make_body: Callable[[], bytes]
    #: (body, secret, timestamp) -> headers; ``timestamped`` says if the scheme has one.
    sign: Callable[[bytes, str, int], dict[str, str]]
    signature_header: str
    timestamped: bool = True

    def __str__(self) -> str:
        return self.source


_GH_DELIVERY: dict[bytes, str] = {}


def _gh_sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
    # A re-delivery of the same body keeps its delivery id, as GitHub's "Redeliver" does.
    delivery = _GH_DELIVERY.setdefault(body, str(uuid.uuid4()))
    return github_headers(body, secret, "marketplace_purchase", delivery)


_SW_IDS: dict[bytes, str] = {}


def _sw_sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
    msg_id = _SW_IDS.setdefault(body, f"msg_{uuid.uuid4().hex}")
    return standard_headers(body, secret, ts, msg_id)


CASES = [
    Case(
        "stripe",
        "STRIPE_WEBHOOK_SECRET",
        STRIPE_SECRET,
        STRIPE_SECRET_NEXT,
        stripe_event,
        stripe_headers,
        "Stripe-Signature",
    ),
    Case(
        "clerk",
        "CLERK_WEBHOOK_SECRET",
        CLERK_SECRET,
        CLERK_SECRET_NEXT,
        clerk_event,
        _sw_sign,
        "webhook-signature",
    ),
    Case(
        "github",
        "GITHUB_WEBHOOK_SECRET",
        GITHUB_SECRET,
        GITHUB_SECRET_NEXT,
        github_event,
        _gh_sign,
        "X-Hub-Signature-256",
        timestamped=False,
    ),
]

by_provider = pytest.mark.parametrize("case", CASES, ids=str)
# GitHub signs no timestamp: its replays are stopped by dedup on the delivery id.
by_timestamped_provider = pytest.mark.parametrize(
    "case", [c for c in CASES if c.timestamped], ids=str
)


def post(client: FlaskClient, case: Case, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    resp = client.post(f"/webhooks/{case.source}", data=body, headers=headers)
    return resp.status_code, resp.get_json()


def inbox(redis: Redis) -> list[Envelope]:
    return [Envelope.decode(raw) for raw in redis.lrange(keys.INBOX, 0, -1)]


@by_provider
def test_valid_signature_is_accepted_and_durable(
    case: Case, client: FlaskClient, redis: Redis
) -> None:
    body = case.make_body()
    status, answer = post(client, case, body, case.sign(body, case.secret, int(time.time())))
    assert (status, answer["status"]) == (200, "accepted")
    [stored] = inbox(redis)
    assert stored.source == case.source
    assert stored.id == answer["id"]
    assert stored.body == orjson.loads(body)


@by_provider
def test_wrong_secret_is_rejected(case: Case, client: FlaskClient, redis: Redis) -> None:
    body = case.make_body()
    headers = case.sign(body, case.next_secret, int(time.time()))
    status, answer = post(client, case, body, headers)
    assert status == 400
    assert answer["reason"] == "bad_signature"
    assert inbox(redis) == []


@by_provider
def test_tampered_body_is_rejected(case: Case, client: FlaskClient, redis: Redis) -> None:
    body = case.make_body()
    headers = case.sign(body, case.secret, int(time.time()))
    tampered = body.replace(b'"', b' "', 1)  # still JSON, one byte longer
    status, answer = post(client, case, tampered, headers)
    assert (status, answer["reason"]) == (400, "bad_signature")
    assert inbox(redis) == []


@by_provider
def test_missing_signature_header_is_rejected(case: Case, client: FlaskClient) -> None:
    body = case.make_body()
    headers = case.sign(body, case.secret, int(time.time()))
    del headers[case.signature_header]
    status, answer = post(client, case, body, headers)
    assert (status, answer["reason"]) == (400, "missing_signature")


@by_provider
@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: "garbage",
        lambda v: v.replace("=", ":"),
        lambda v: "",
        lambda v: v.split(",")[0] if "," in v else v[:10],
    ],
    ids=["garbage", "wrong-separator", "empty", "truncated"],
)
def test_malformed_signature_header_is_rejected(
    case: Case, mangle: Callable[[str], str], client: FlaskClient, redis: Redis
) -> None:
    body = case.make_body()
    headers = case.sign(body, case.secret, int(time.time()))
    headers[case.signature_header] = mangle(headers[case.signature_header])
    status, answer = post(client, case, body, headers)
    assert status == 400
    assert answer["reason"] in {"malformed_signature", "missing_signature", "bad_signature"}
    assert answer["error"]
    assert inbox(redis) == []


@by_timestamped_provider
@pytest.mark.parametrize("offset", [-301, 301, -3600 * 24, 3600 * 24])
def test_timestamp_outside_tolerance_is_rejected(
    case: Case, offset: int, client: FlaskClient, redis: Redis
) -> None:
    body = case.make_body()
    status, answer = post(
        client, case, body, case.sign(body, case.secret, int(time.time()) + offset)
    )
    assert (status, answer["reason"]) == (400, "timestamp_out_of_tolerance")
    assert inbox(redis) == []


@by_provider
@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamp_inside_tolerance_is_accepted(
    case: Case, offset: int, client: FlaskClient
) -> None:
    body = case.make_body()
    status, answer = post(
        client, case, body, case.sign(body, case.secret, int(time.time()) + offset)
    )
    assert (status, answer["status"]) == (200, "accepted")


def test_tolerance_is_configurable(
    make_app: Callable[..., Flask], tmp_path: pytest.TempPathFactory
) -> None:
    # A mapping with a 10-minute tolerance accepts what the default 5 minutes refuses.
    from tests.conftest import ROOT

    text = (ROOT / "mappings" / "stripe.yaml").read_text()
    mappings = tmp_path / "mappings"  # type: ignore[operator]
    mappings.mkdir()
    (mappings / "stripe.yaml").write_text(text.replace("tolerance: 300", "tolerance: 600"))
    assert "tolerance: 600" in (mappings / "stripe.yaml").read_text()
    app = make_app(BRIDGE_MAPPINGS_DIR=str(mappings))
    body = stripe_event()
    resp = app.test_client().post(
        "/webhooks/stripe",
        data=body,
        headers=stripe_headers(body, STRIPE_SECRET, int(time.time()) - 500),
    )
    assert resp.status_code == 200


@by_provider
def test_redelivery_is_a_duplicate(case: Case, client: FlaskClient, redis: Redis) -> None:
    body = case.make_body()
    first = post(client, case, body, case.sign(body, case.secret, int(time.time())))
    # The provider retries later: a new signature (new timestamp), same event id.
    again = post(client, case, body, case.sign(body, case.secret, int(time.time()) + 1))
    assert first[1]["status"] == "accepted"
    assert again == (200, {"status": "duplicate", "id": first[1]["id"]})
    assert len(inbox(redis)) == 1


@by_provider
def test_remembered_id_lives_at_least_dedup_ttl(
    case: Case, make_app: Callable[..., Flask], redis: Redis
) -> None:
    client = make_app(BRIDGE_DEDUP_TTL=str(5 * 24 * 3600)).test_client()
    body = case.make_body()
    _, answer = post(client, case, body, case.sign(body, case.secret, int(time.time())))
    # bridge.dedup: the id's bucket expires 5 days after its span (5 days / 8) ends.
    # Its digest is BLAKE2b-112 of "id", source, id joined by NUL.
    digest = hashlib.blake2b(
        f"id\0{case.source}\0{answer['id']}".encode(), digest_size=14
    ).digest()
    shards = [k for k in redis.scan_iter(match="bridge:seen:*") if k != b"bridge:seen:meta"]
    assert [k for k in shards if redis.hexists(k, digest)]
    for key in shards:
        assert 5 * 24 * 3600 - 5 <= redis.ttl(key) <= 5 * 24 * 3600 + 54000


@by_provider
def test_secret_rotation_accepts_either_secret(
    case: Case, make_app: Callable[..., Flask], redis: Redis
) -> None:
    client = make_app(**{case.env_var: f"{case.secret},{case.next_secret}"}).test_client()
    for secret in (case.secret, case.next_secret):
        body = case.make_body()
        status, answer = post(client, case, body, case.sign(body, secret, int(time.time())))
        assert (status, answer["status"]) == (200, "accepted"), secret
    body = case.make_body()
    status, _ = post(client, case, body, case.sign(body, "whsec_" + "QUJD" * 8, int(time.time())))
    assert status == 400
    assert len(inbox(redis)) == 2


def test_stripe_header_with_several_v1_signatures(client: FlaskClient) -> None:
    # During Stripe-side secret rolls one header carries a v1 per active secret.
    body = stripe_event()
    ts = int(time.time())
    old = stripe_headers(body, STRIPE_SECRET_NEXT, ts)["Stripe-Signature"]
    new = stripe_headers(body, STRIPE_SECRET, ts)["Stripe-Signature"]
    header = f"{old},{new.split(',', 1)[1]},v0=deadbeef"
    resp = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header})
    assert resp.status_code == 200, resp.get_json()


def test_stripe_sdk_signing_helper_is_accepted(client: FlaskClient) -> None:
    body = stripe_event()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
    resp = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header})
    assert resp.get_json()["status"] == "accepted"


def test_svix_prefixed_headers_are_accepted(client: FlaskClient) -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET, prefix="svix")
    resp = client.post("/webhooks/clerk", data=body, headers=headers)
    assert resp.get_json()["status"] == "accepted"


def test_standard_webhooks_signature_list_with_other_versions(client: FlaskClient) -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET)
    headers["webhook-signature"] = "v1a,AAAA v1,bm90LXRoaXM= " + headers["webhook-signature"]
    resp = client.post("/webhooks/clerk", data=body, headers=headers)
    assert resp.get_json()["status"] == "accepted"


def test_github_form_encoded_delivery_is_accepted(client: FlaskClient, redis: Redis) -> None:
    from urllib.parse import urlencode

    payload = github_event()
    body = urlencode({"payload": payload.decode()}).encode()
    headers = github_headers(body, GITHUB_SECRET, "marketplace_purchase")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = client.post("/webhooks/github", data=body, headers=headers)
    assert resp.get_json()["status"] == "accepted"
    [stored] = inbox(redis)
    assert stored.type == "marketplace_purchase.purchased"
    assert stored.body == orjson.loads(payload)


def test_unhandled_event_type_is_ignored_not_stored(client: FlaskClient, redis: Redis) -> None:
    body = stripe_event("balance.available")
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ignored"
    assert inbox(redis) == []


def test_unhandled_event_with_bad_signature_is_still_rejected(client: FlaskClient) -> None:
    body = stripe_event("balance.available")
    resp = client.post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET_NEXT)
    )
    assert resp.status_code == 400


def test_signed_body_that_is_not_an_event_is_400(client: FlaskClient, redis: Redis) -> None:
    for body in (b"[1,2,3]", b"not json", b'{"id": "evt_1", "type": "x"}'):
        resp = client.post(
            "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
        )
        assert resp.status_code == 400
        assert resp.get_json()["reason"] == "malformed_payload"
    assert inbox(redis) == []


def test_unknown_source_is_404(client: FlaskClient) -> None:
    resp = client.post("/webhooks/paypal", data=b"{}")
    assert resp.status_code == 404
    assert resp.get_json() == {
        "error": "no mapping for source 'paypal'",
        "reason": "unknown_source",
    }


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_is_405_json(client: FlaskClient, method: str) -> None:
    resp = getattr(client, method)("/webhooks/stripe")
    assert resp.status_code == 405
    assert resp.is_json
    assert resp.get_json()["error"]


def test_body_over_limit_is_413(make_app: Callable[..., Flask], redis: Redis) -> None:
    client = make_app(BRIDGE_MAX_BODY_BYTES="4096").test_client()
    body = stripe_event(padding="x" * 5000)
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 413
    assert resp.get_json()["reason"] == "payload_too_large"
    assert inbox(redis) == []


def test_body_at_limit_is_accepted(make_app: Callable[..., Flask]) -> None:
    client = make_app(BRIDGE_MAX_BODY_BYTES="4096").test_client()
    body = stripe_event()
    body = body[:-1] + b',"pad":"' + b"x" * (4096 - len(body) - 9) + b'"}'
    assert len(body) == 4096
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 200


def test_every_request_logs_one_line_without_secrets_or_body(
    client: FlaskClient, logs: LogLines
) -> None:
    body = stripe_event()
    client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET_NEXT))
    client.post("/webhooks/nowhere", data=body)
    lines = [r for r in logs.records() if r["event"] == "webhook"]
    assert [(r["outcome"], r["status"]) for r in lines] == [
        ("accepted", 200),
        ("rejected", 400),
        ("rejected", 404),
    ]
    assert lines[0]["event_id"] == orjson.loads(body)["id"]
    assert lines[1]["reason"] == "bad_signature"
    text = logs.getvalue()
    for secret in (STRIPE_SECRET, STRIPE_SECRET_NEXT):
        assert secret not in text
    assert "cs_test_" not in text  # nothing from inside the body


def test_error_answers_never_leak_secrets(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    body = stripe_event()
    resp = client.post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET_NEXT)
    )
    assert STRIPE_SECRET not in resp.get_data(as_text=True)
    assert "Traceback" not in resp.get_data(as_text=True)
