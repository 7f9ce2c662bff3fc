"""The Stripe verifier on its own (the app-level attacks are in tests/intake)."""

from __future__ import annotations

import time

import orjson
import pytest
import stripe

from bridge.errors import MalformedPayload, SignatureError, TimestampOutOfTolerance
from bridge.providers.stripe import StripeProvider, signature_header
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers

NOW = time.time()
provider = StripeProvider()


def verify(body: bytes, header: str, secrets: list[str] | None = None) -> object:
    return provider.verify(
        body, {"Stripe-Signature": header}, secrets or [STRIPE_SECRET], tolerance=300, now=NOW
    )


def test_signer_matches_the_sdk_and_the_documented_scheme() -> None:
    body = stripe_event()
    ts = int(NOW)
    ours = signature_header(body, STRIPE_SECRET, ts)
    assert ours == stripe.WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, ts
    )
    assert ours == stripe_headers(body, STRIPE_SECRET, ts)["Stripe-Signature"]


def test_event_fields_come_from_the_verified_body() -> None:
    body = stripe_event("invoice.paid")
    event = verify(body, signature_header(body, STRIPE_SECRET, int(NOW)))
    parsed = orjson.loads(body)
    assert (event.id, event.type, event.time) == (  # type: ignore[attr-defined]
        parsed["id"],
        "invoice.paid",
        float(parsed["created"]),
    )
    assert event.raw == body  # type: ignore[attr-defined]


def test_no_configured_secret_fails_closed() -> None:
    body = stripe_event()
    with pytest.raises(SignatureError) as info:
        verify(body, signature_header(body, "", int(NOW)), secrets=["", " "])
    assert info.value.reason == "no_secret"


def test_future_timestamp_is_rejected_even_though_the_sdk_allows_it() -> None:
    body = stripe_event()
    with pytest.raises(TimestampOutOfTolerance, match="future"):
        verify(body, signature_header(body, STRIPE_SECRET, int(NOW) + 3600))


def test_signature_for_another_timestamp_is_rejected() -> None:
    body = stripe_event()
    header = signature_header(body, STRIPE_SECRET, int(NOW))
    forged = header.replace(f"t={int(NOW)}", f"t={int(NOW) + 1}")
    with pytest.raises(SignatureError, match="none of the source's secrets"):
        verify(body, forged)


def test_non_utf8_body_is_rejected_not_crashed() -> None:
    body = b'{"id": "\xff"}'
    with pytest.raises(SignatureError):
        verify(body, "t=1,v1=00")


@pytest.mark.parametrize("drop", ["id", "type", "created"])
def test_verified_body_missing_event_fields_is_malformed(drop: str) -> None:
    event = orjson.loads(stripe_event())
    del event[drop]
    body = orjson.dumps(event)
    with pytest.raises(MalformedPayload, match=drop):
        verify(body, signature_header(body, STRIPE_SECRET, int(NOW)))
