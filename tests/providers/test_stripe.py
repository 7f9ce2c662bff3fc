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


def _v1(body: bytes, timestamp: int) -> str:
    """The ``v1=<hex>`` element Stripe would send for ``body`` signed at ``timestamp``."""
    return stripe_headers(body, STRIPE_SECRET, timestamp)["Stripe-Signature"].split(",")[1]


@pytest.mark.parametrize(
    "template",
    [
        "{v1}, t={now},t={old}",  # the captured attack: a lenient parser sees t=<now>
        "t={now},{v1},t={old}",
        "t={old},{v1},t={now}",
        "t={now},t={old},{v1}",
    ],
)
def test_a_second_t_is_malformed_so_an_old_signature_cannot_pass_as_fresh(
    template: str,
) -> None:
    body = stripe_event()
    old = int(NOW) - 3600  # captured an hour ago: well outside the 300 s tolerance
    header = template.format(v1=_v1(body, old), now=int(NOW), old=old)
    with pytest.raises(SignatureError) as info:
        verify(body, header)
    assert info.value.reason == "malformed_signature"


def test_the_timestamp_checked_is_the_one_signed() -> None:
    body = stripe_event()
    old = int(NOW) - 3600
    # One t, the old one, with its genuine signature: only the tolerance can stop it.
    with pytest.raises(TimestampOutOfTolerance):
        verify(body, f"t={old},{_v1(body, old)}")
    # A fresh t with the old signature: the HMAC covers t, so it does not match.
    with pytest.raises(SignatureError, match="none of the source's secrets"):
        verify(body, f"t={int(NOW)},{_v1(body, old)}")


@pytest.mark.parametrize(
    "v1",
    [
        "é" * 64,  # non-ASCII: the SDK's compare_digest raises TypeError on it
        "\u00ff" + "0" * 63,
        "ABCDEF" + "0" * 58,  # upper-case hex is never what Stripe sends
        "0" * 63,
        "",
    ],
)
def test_a_v1_that_cannot_be_a_signature_is_rejected_not_crashed(v1: str) -> None:
    body = stripe_event()
    with pytest.raises(SignatureError) as info:
        verify(body, f"t={int(NOW)},v1={v1}")
    assert info.value.reason == "malformed_signature"


def test_a_bad_v1_next_to_the_real_one_does_not_hide_it() -> None:
    body = stripe_event()
    header = f"t={int(NOW)},v1={'é' * 64},{_v1(body, int(NOW))}"
    assert verify(body, header).raw == body  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "stamp", ["", "+1700000000", "1_700_000_000", "\u0661\u0667\u0660\u0660", "9" * 5000, " "]
)
def test_a_t_that_is_not_plain_decimal_seconds_is_malformed(stamp: str) -> None:
    body = stripe_event()
    with pytest.raises(SignatureError) as info:
        verify(body, f"t={stamp},{_v1(body, int(NOW))}")
    assert info.value.reason == "malformed_signature"
