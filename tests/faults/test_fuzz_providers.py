"""Hypothesis fuzzing of every provider's header parsing (issue 8, the fuzz suite).

For any headers and body: ``verify_closed`` either returns an event or raises a
:class:`~bridge.errors.WebhookError` (a 4xx with a reason), never anything else; and
it returns an event only when an independent check, written from each provider's
documentation (tests/signing.py), says the signature is valid. Example counts are
modest so that CI stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bridge.errors import SignatureError, WebhookError
from bridge.providers import Provider, VerifiedEvent, get_provider, verify_closed
from bridge.providers.generic_hmac import GenericHmacProvider, SignatureConfig
from tests.signing import (
    CLERK_SECRET,
    GITHUB_SECRET,
    STRIPE_SECRET,
    clerk_event,
    github_event,
    github_headers,
    standard_headers,
    stripe_event,
    stripe_headers,
)

NOW = time.time()
TOLERANCE = 300
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Header values as a WSGI server hands them over: latin-1 text without line breaks.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
)
token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)


# ---------------------------------------------------------------- independent checks


def stripe_valid(body: bytes, headers: Mapping[str, str]) -> bool:
    """https://docs.stripe.com/webhooks#verify-manually (blanks around elements
    ignored): exactly one ``t``, a ``v1`` equal to HMAC-SHA256(secret, "t.body"), and
    that t within the tolerance."""
    stamps, signatures = [], []
    for item in headers.get("Stripe-Signature", "").split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            stamps.append(value.strip())
        elif key.strip() == "v1":
            signatures.append(value.strip())
    if len(stamps) != 1 or not re.fullmatch(r"[0-9]+", stamps[0]):
        return False
    t = int(stamps[0])
    mac = hmac.new(STRIPE_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return mac.hexdigest() in signatures and abs(NOW - t) <= TOLERANCE


def standard_valid(body: bytes, headers: Mapping[str, str]) -> bool:
    """https://www.standardwebhooks.com: base64 HMAC of "id.timestamp.body"."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not re.fullmatch(r"[0-9]{1,11}", stamp):
        return False
    key = base64.b64decode(CLERK_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{int(stamp)}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    signatures = headers.get("webhook-signature", "").split(" ")
    return expected in signatures and abs(NOW - int(stamp)) <= TOLERANCE


def github_valid(body: bytes, headers: Mapping[str, str]) -> bool:
    """https://docs.github.com/webhooks: "sha256=" + hex HMAC of the body."""
    mac = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Hub-Signature-256", ""), "sha256=" + mac)


HMAC_SECRET = "generic-fuzz-secret"


def _hex(message: bytes) -> str:
    return hmac.new(HMAC_SECRET.encode(), message, hashlib.sha256).hexdigest()


def paddle_like_valid(body: bytes, headers: Mapping[str, str]) -> bool:
    """generic-hmac as Paddle Billing signs: ``ts=<t>;h1=<hex HMAC of "t:body">``. Valid
    when some ``ts`` t has a matching ``h1`` and is within the tolerance (whichever t
    bridge checks must be the one it signed)."""
    items = [i.strip().partition("=") for i in headers.get("Paddle-Signature", "").split(";")]
    stamps = [v for k, _, v in items if k == "ts" and v.isascii() and v.isdigit()]
    signatures = {v for k, _, v in items if k == "h1"}
    return any(
        _hex(f"{t}:".encode() + body) in signatures and abs(NOW - int(t)) <= TOLERANCE
        for t in stamps
    )


def header_id_valid(body: bytes, headers: Mapping[str, str]) -> bool:
    """generic-hmac with an unsigned id header: ``X-Sig: sha256=<hex HMAC of body>``."""
    return headers.get("X-Sig", "").strip() == "sha256=" + _hex(body)


def _generic(config: dict[str, object]) -> Provider:
    return GenericHmacProvider(SignatureConfig.model_validate(config))


# ------------------------------------------------------------------------- cases

Signer = Callable[[bytes], dict[str, str]]


class Scheme:
    def __init__(
        self,
        identifier: str,
        secret: str,
        body: Callable[[], bytes],
        sign: Signer,
        valid: Callable[[bytes, Mapping[str, str]], bool],
        names: list[str],
        provider: Provider | None = None,
    ) -> None:
        self.provider: Provider = provider or get_provider(identifier)
        self.identifier = identifier
        self.secret = secret
        # One body per scheme for the whole run: draws that depend on its length must
        # replay identically (hypothesis re-runs examples while shrinking).
        self.fixed_body = body()
        self.sign = sign
        self.valid = valid
        self.names = names

    def __str__(self) -> str:
        return self.identifier


SCHEMES = [
    Scheme(
        "stripe",
        STRIPE_SECRET,
        stripe_event,
        lambda b: stripe_headers(b, STRIPE_SECRET, int(NOW)),
        stripe_valid,
        ["Stripe-Signature"],
    ),
    Scheme(
        "standard-webhooks",
        CLERK_SECRET,
        clerk_event,
        lambda b: standard_headers(b, CLERK_SECRET, int(NOW), "msg_fuzz"),
        standard_valid,
        ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ),
    Scheme(
        "github",
        GITHUB_SECRET,
        github_event,
        lambda b: github_headers(b, GITHUB_SECRET, "marketplace_purchase", "d-fuzz"),
        github_valid,
        ["X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"],
    ),
    Scheme(
        "generic-hmac/paddle-like",
        HMAC_SECRET,
        lambda: orjson.dumps(
            {"event_id": f"evt_{uuid.uuid4().hex}", "event_type": "customer.created", "data": {}}
        ),
        lambda b: {"Paddle-Signature": f"ts={int(NOW)};h1={_hex(f'{int(NOW)}:'.encode() + b)}"},
        paddle_like_valid,
        ["Paddle-Signature"],
        provider=_generic(
            {
                "header": "Paddle-Signature",
                "pairs": {"separator": ";", "signature": "h1", "timestamp": "ts"},
                "signed": "{timestamp}:{body}",
                "timestamp": {"unit": "s"},
                "event_id": {"body": "event_id"},
                "event_type": {"body": "event_type"},
            }
        ),
    ),
    Scheme(
        "generic-hmac/header-id",
        HMAC_SECRET,
        lambda: orjson.dumps({"object": {"id": uuid.uuid4().hex}}),
        lambda b: {"X-Sig": "sha256=" + _hex(b), "X-Id": "id-1", "X-Type": "thing.done"},
        header_id_valid,
        ["X-Sig", "X-Id", "X-Type"],
        provider=_generic(
            {
                "header": "X-Sig",
                "prefix": "sha256=",
                "event_id": {"header": "X-Id"},
                "event_type": {"header": "X-Type"},
            }
        ),
    ),
]
by_scheme = pytest.mark.parametrize("scheme", SCHEMES, ids=str)


def check(scheme: Scheme, body: bytes, headers: dict[str, str]) -> VerifiedEvent | None:
    """Verify as intake does; only WebhookError may escape, and only a request the
    independent check calls valid may pass."""
    refusal: WebhookError | None = None
    try:
        event = verify_closed(
            scheme.provider, body, headers, [scheme.secret], tolerance=TOLERANCE, now=NOW
        )
    except WebhookError as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.status // 100 == 4
        assert refusal.reason
        return None
    assert scheme.valid(body, headers), f"accepted without a valid signature: {headers!r}"
    return event


@by_scheme
@FUZZ
@given(data=st.data(), body=st.binary(max_size=300))
def test_arbitrary_headers_and_body_are_rejected_cleanly(
    scheme: Scheme, data: st.DataObject, body: bytes
) -> None:
    names = st.sampled_from(scheme.names) | token
    headers = data.draw(st.dictionaries(names, header_text, max_size=5))
    assert check(scheme, body, headers) is None  # an HMAC cannot be guessed


@by_scheme
@FUZZ
@given(data=st.data())
def test_a_signed_request_with_one_header_changed_passes_only_if_still_valid(
    scheme: Scheme, data: st.DataObject
) -> None:
    body = scheme.fixed_body
    headers = scheme.sign(body)
    name = data.draw(st.sampled_from(scheme.names))
    original = headers[name]
    mutation = data.draw(
        st.sampled_from(["replace", "append", "prepend", "insert", "truncate", "drop"])
    )
    extra = data.draw(header_text | st.integers(-(10**30), 10**30).map(str))
    if mutation == "replace":
        headers[name] = extra
    elif mutation == "append":
        headers[name] = original + extra
    elif mutation == "prepend":
        headers[name] = extra + original
    elif mutation == "insert":
        at = data.draw(st.integers(0, len(original)))
        headers[name] = original[:at] + extra + original[at:]
    elif mutation == "truncate":
        headers[name] = original[: data.draw(st.integers(0, len(original)))]
    else:
        del headers[name]
    check(scheme, body, headers)


@by_scheme
@FUZZ
@given(data=st.data())
def test_a_signed_request_with_its_body_changed_is_rejected(
    scheme: Scheme, data: st.DataObject
) -> None:
    body = scheme.fixed_body
    headers = scheme.sign(body)
    at = data.draw(st.integers(0, len(body) - 1))
    replacement = data.draw(st.binary(min_size=1, max_size=4))
    changed = body[:at] + replacement + body[at + 1 :]
    if changed != body:
        assert check(scheme, changed, headers) is None


stripe_element = st.tuples(
    st.sampled_from(["t", "v1", "v0", " t", "t ", "V1", "", "t=t"]),
    st.sampled_from(["=", "", "=="]),
    st.one_of(
        st.integers(-(10**20), 10**20).map(str),
        st.sampled_from([str(int(NOW)), str(int(NOW) - 3600), "0" * 64, "é" * 64]),
        header_text,
    ),
).map("".join)


@FUZZ
@given(elements=st.lists(stripe_element, max_size=6), keep=st.booleans())
@example(elements=[" t=1", f"t={int(NOW)}"], keep=True)
def test_stripe_header_grammar(elements: list[str], keep: bool) -> None:
    """Shuffled, duplicated, padded and odd elements around (or instead of) a genuine
    ``t`` and ``v1``: never a crash; accepted only when exactly one ``t`` is signed."""
    body = SCHEMES[0].fixed_body
    genuine = stripe_headers(body, STRIPE_SECRET, int(NOW))["Stripe-Signature"].split(",")
    header = ",".join([*genuine, *elements] if keep else elements)
    check(SCHEMES[0], body, {"Stripe-Signature": header})


@pytest.mark.parametrize("second", [str(int(NOW) - 3600), str(int(NOW))])
def test_generic_pairs_with_two_timestamps_are_malformed(second: str) -> None:
    """As for Stripe: with two ``ts`` items, which one is signed and which one checked
    would be a guess, so the header is refused whatever their values."""
    paddle = SCHEMES[3]
    body = paddle.fixed_body
    header = paddle.sign(body)["Paddle-Signature"] + f";ts={second}"
    with pytest.raises(SignatureError) as info:
        verify_closed(
            paddle.provider,
            body,
            {"Paddle-Signature": header},
            [HMAC_SECRET],
            tolerance=TOLERANCE,
            now=NOW,
        )
    assert info.value.reason == "malformed_signature"
