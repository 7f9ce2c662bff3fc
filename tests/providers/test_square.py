"""Square: the attack table, Square's published signed vector, and the real documented
payloads through intake and the shipped mapping."""

from __future__ import annotations

import uuid

import orjson
import pytest
from redis import Redis

from bridge.errors import SignatureError
from bridge.providers.square import SquareProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS, payload_files
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import SQUARE_SECRET, SQUARE_URL


def make_body() -> bytes:
    payment = f"pay{uuid.uuid4().hex[:20]}"
    return orjson.dumps(
        {
            "merchant_id": "M1",
            "type": "payment.updated",
            "event_id": str(uuid.uuid4()),
            "created_at": "2026-11-01T10:00:00.000Z",
            "data": {
                "type": "payment",
                "id": payment,
                "object": {
                    "payment": {
                        "id": payment,
                        "status": "COMPLETED",
                        "amount_money": {"amount": 1000, "currency": "USD"},
                        "total_money": {"amount": 1000, "currency": "USD"},
                    }
                },
            },
        }
    )


class TestSquareAttacks(AttackTable):
    case = Case(
        source="square",
        env_var="SQUARE_WEBHOOK_SECRET",
        secret=SQUARE_SECRET,
        next_secret="sq-rotated-signature-key",
        make_body=make_body,
        sign=lambda body, secret, ts: signing.square(body, secret, SQUARE_URL),
        signature_header="x-square-hmacsha256-signature",
    )


def test_a_signature_over_another_url_is_rejected(redis_url: str, redis: Redis) -> None:
    body = make_body()
    headers = signing.square(body, SQUARE_SECRET, "https://attacker.example/webhooks/square")
    resp = app_for(redis_url).test_client().post("/webhooks/square", data=body, headers=headers)
    assert (resp.status_code, resp.get_json()["reason"]) == (400, "bad_signature")


def test_without_square_webhook_url_verification_refuses(redis_url: str) -> None:
    app = app_for(redis_url, SQUARE_WEBHOOK_URL="")
    body = make_body()
    # Even signed over the URL bridge sees, the placeholder URL is refused, not guessed.
    headers = signing.square(body, SQUARE_SECRET, "http://localhost/webhooks/square")
    resp = app.test_client().post("/webhooks/square", data=body, headers=headers)
    assert resp.status_code == 400
    assert "SQUARE_WEBHOOK_URL" in resp.get_json()["error"]


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")


@present
def test_published_vector_verifies_and_fails_on_one_byte() -> None:
    # square-python-sdk tests/integration/test_webhooks_helper.py
    body = (PAYLOADS / "square__webhooks.test_notification.signed_vector.json").read_bytes()
    key = "Ibxx_5AKakO-3qeNVR61Dw"
    url = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
    headers = {"x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="}
    event = SquareProvider().verify(body, headers, [key], tolerance=0, now=0, url=url)
    assert (event.id, event.type) == (
        "ac3ac95b-f97d-458c-a6e6-18981597e05f",
        "webhooks.test_notification",
    )
    changed = body.replace(b"MLEFBHHSJGVHD", b"MLEFBHHSJGVHE")
    with pytest.raises(SignatureError):
        SquareProvider().verify(changed, headers, [key], tolerance=0, now=0, url=url)
    with pytest.raises(SignatureError):
        SquareProvider().verify(body, headers, [key], tolerance=0, now=0, url=url + "/")


REAL = [p for p in payload_files("square") if "signed_vector" not in p.name]


def _deliver(name: str, redis_url: str, redis: Redis) -> tuple[str, list[dict[str, object]]]:
    body = (PAYLOADS / name).read_bytes()
    stored, calls = deliver(
        app_for(redis_url), body, signing.square(body, SQUARE_SECRET, SQUARE_URL), "square", redis
    )
    return stored.id, calls


@present
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_payload_is_accepted_when_signed(path, redis_url: str, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    _deliver(path.name, redis_url, redis)


@present
def test_real_completed_payment_numbers_and_state_id(redis_url: str, redis: Redis) -> None:
    event_id, [order] = _deliver("square__payment.updated.json", redis_url, redis)
    assert event_id == "payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY:COMPLETED"
    assert order["event"] == "Order Completed"
    assert order["timestamp"] == "2020-02-06T21:27:34.308Z"
    # amount_money 100 cents, total_money 100 cents (USD), no tip
    assert order["properties"] == {
        "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
        "payment_id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
        "total": 1,
        "revenue": 1,
        "currency": "USD",
        "payment_method": "CARD",
        "location_id": "S8GWD5R9QB376",
    }


@present
def test_a_second_completed_update_of_one_payment_is_a_duplicate(
    redis_url: str, redis: Redis
) -> None:
    body = (PAYLOADS / "square__payment.updated.json").read_bytes()
    app = app_for(redis_url)
    client = app.test_client()
    first = client.post(
        "/webhooks/square", data=body, headers=signing.square(body, SQUARE_SECRET, SQUARE_URL)
    )
    # Square reports the same payment again (a processing fee was set): a new event id.
    later = orjson.loads(body)
    later["event_id"] = str(uuid.uuid4())
    later["data"]["object"]["payment"]["processing_fee"] = [{"amount_money": {"amount": 33}}]
    raw = orjson.dumps(later)
    again = client.post(
        "/webhooks/square", data=raw, headers=signing.square(raw, SQUARE_SECRET, SQUARE_URL)
    )
    assert first.get_json()["status"] == "accepted"
    assert again.get_json() == {
        "status": "duplicate",
        "id": "payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY:COMPLETED",
    }


@present
def test_real_refund_and_approved_payment(redis_url: str, redis: Redis) -> None:
    _, [refund] = _deliver("square__refund.updated.json", redis_url, redis)
    assert refund["event"] == "Order Refunded"
    assert refund["properties"]["total"] == 10  # type: ignore[index]  # 1000 cents
    assert refund["properties"]["order_id"] == "haOyDuHiqtAXMk0d8pDKXpL7Jg4F"  # type: ignore[index]
    _, created = _deliver("square__payment.created.json", redis_url, redis)
    assert created == []  # APPROVED, not yet COMPLETED
    _, [started] = _deliver("square__subscription.created.json", redis_url, redis)
    assert started["event"] == "Subscription Started"
