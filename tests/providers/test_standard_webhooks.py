"""The Standard Webhooks verifier on its own."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.standard_webhooks import StandardWebhooksProvider
from tests.signing import CLERK_SECRET, clerk_event, standard_headers

NOW = time.time()
provider = StandardWebhooksProvider()


def test_signer_matches_the_reference_library_and_the_spec() -> None:
    body = clerk_event()
    # Now, not the module's NOW: the reference library checks the timestamp against the
    # clock, and a long test session outlasts its five minutes.
    now = time.time()
    ours = provider.sign(body, CLERK_SECRET, now=now, event_id="msg_1")
    # The reference implementation accepts what bridge signs...
    Webhook(CLERK_SECRET).verify(body, ours)
    # ...and bridge's signature equals the one computed from the spec by hand.
    spec = standard_headers(body, CLERK_SECRET, int(now), "msg_1")
    assert ours["webhook-signature"] == spec["webhook-signature"]


def test_event_id_and_time_come_from_signed_headers() -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET, int(NOW) - 10, "msg_abc")
    event = provider.verify(body, headers, [CLERK_SECRET], tolerance=300, now=NOW)
    assert (event.id, event.type, event.time) == ("msg_abc", "user.created", int(NOW) - 10)


def test_unparseable_secret_never_verifies() -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET)
    with pytest.raises(SignatureError):
        provider.verify(body, headers, ["whsec_%%%not-base64"], tolerance=300, now=NOW)


def test_signed_payload_without_type_is_malformed() -> None:
    body = b'{"data": {}}'
    headers = standard_headers(body, CLERK_SECRET, int(NOW))
    with pytest.raises(MalformedPayload):
        provider.verify(body, headers, [CLERK_SECRET], tolerance=300, now=NOW)


def test_non_integer_timestamp_is_malformed() -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET)
    headers["webhook-timestamp"] = "soon"
    with pytest.raises(SignatureError) as info:
        provider.verify(body, headers, [CLERK_SECRET], tolerance=300, now=NOW)
    assert info.value.reason == "malformed_signature"


@pytest.mark.parametrize(
    "stamp",
    [
        "99999999999999999999",  # datetime.fromtimestamp raised OverflowError: a 500
        "999999999999",  # past year 9999: ValueError
        "-1",
        "+1700000000",
        "\u0661\u0667" + "\u0660" * 8,  # int() accepts other scripts' digits; the spec means ASCII
        "1e9",
    ],
)
def test_a_timestamp_that_is_not_plain_seconds_is_malformed_not_crashed(stamp: str) -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET, int(NOW))
    headers["webhook-timestamp"] = stamp
    with pytest.raises(SignatureError) as info:
        provider.verify(body, headers, [CLERK_SECRET], tolerance=300, now=NOW)
    assert info.value.reason == "malformed_signature"


def test_the_message_id_is_signed_so_it_alone_is_the_replay_key() -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET, int(NOW), "msg_1")
    headers["webhook-id"] = "msg_2"  # a replay under a new id no longer verifies
    with pytest.raises(SignatureError):
        provider.verify(body, headers, [CLERK_SECRET], tolerance=300, now=NOW)
    assert StandardWebhooksProvider.signs_event_id is True
