"""``generic-hmac`` configured in YAML for two documented schemes, checked against
their published signed vectors: Paddle Billing and Square (see
../shared/fixtures/payloads/SOURCES.md); and lint refusing unsafe configurations."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from bridge.errors import SignatureError, TimestampOutOfTolerance
from bridge.mappings import load_text
from bridge.providers import Provider
from tests.conftest import PAYLOADS

pytestmark = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared fixtures absent")

RULES = """\
identity:
  anonymous_id: data.id
rules:
  - name: any
    on: "*"
    emit:
      - type: track
        event: Something
"""

PADDLE = (
    """\
provider: generic-hmac
secrets: ${PADDLE_SECRET}
signature:
  header: Paddle-Signature
  pairs: {separator: ";", signature: h1, timestamp: ts}
  algorithm: sha256
  encoding: hex
  signed: "{timestamp}:{body}"
  timestamp: {unit: s}
  event_id: {body: event_id}
  event_type: {body: event_type}
  event_time: {body: occurred_at}
"""
    + RULES
)

SQUARE = (
    """\
provider: generic-hmac
secrets: ${SQUARE_SECRET}
options:
  public_url: https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9
signature:
  header: x-square-hmacsha256-signature
  encoding: base64
  signed: "{url}{body}"
  event_id: {body: event_id}
  event_type: {body: type}
  event_time: {body: created_at}
"""
    + RULES
)

# The published vectors (SOURCES.md): secret, header, and the body bytes.
PADDLE_SECRET = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"
PADDLE_VECTORS = [
    (
        "paddle_billing__customer.created.signed_vector.json",
        "ts=1710498758;h1=558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744",
        1710498758,
        "evt_01hs0tqfme2xwb2hvwv87p8y3w",
    ),
    (
        "paddle_billing__customer.created.signed_vector_unicode.json",
        "ts=1710498288;h1=38219b3ba1578184e625c29d201a27cd25bd69e2ec9c3ab87dcb90d87ff73a41",
        1710498288,
        "evt_01hs0t94tjvtv62azjmkbeysz7",
    ),
]
SQUARE_SECRET = "Ibxx_5AKakO-3qeNVR61Dw"
SQUARE_SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
SQUARE_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"


def plugin(text: str, env: dict[str, str]) -> tuple[Provider, tuple[str, ...], str | None]:
    mapping, problems = load_text(text, "src", env)
    assert [str(p) for p in problems] == []
    assert mapping is not None
    return mapping.plugin(), mapping.secrets, mapping.public_url


@pytest.mark.parametrize(("name", "header", "ts", "event_id"), PADDLE_VECTORS)
def test_paddle_published_vectors_verify(name: str, header: str, ts: int, event_id: str) -> None:
    provider, secrets, _ = plugin(PADDLE, {"PADDLE_SECRET": PADDLE_SECRET})
    # The SDK's test strips the file's final newline: those are the signed bytes.
    body = (PAYLOADS / name).read_bytes().rstrip(b"\n")
    event = provider.verify(body, {"Paddle-Signature": header}, secrets, tolerance=5, now=ts + 2)
    assert event.id == event_id
    assert event.type == "customer.created"
    assert event.raw == body
    with pytest.raises(TimestampOutOfTolerance):
        provider.verify(body, {"Paddle-Signature": header}, secrets, tolerance=5, now=ts + 60)
    with pytest.raises(SignatureError):
        provider.verify(body + b" ", {"Paddle-Signature": header}, secrets, tolerance=5, now=ts)
    # Another timestamp with the same h1: the timestamp is signed.
    forged = header.replace(f"ts={ts}", f"ts={ts + 1}")
    with pytest.raises(SignatureError):
        provider.verify(body, {"Paddle-Signature": forged}, secrets, tolerance=5, now=ts)


def test_paddle_event_time_is_occurred_at() -> None:
    provider, secrets, _ = plugin(PADDLE, {"PADDLE_SECRET": PADDLE_SECRET})
    name, header, ts, _ = PADDLE_VECTORS[0]
    body = (PAYLOADS / name).read_bytes().rstrip(b"\n")
    event = provider.verify(body, {"Paddle-Signature": header}, secrets, tolerance=5, now=ts)
    # occurred_at 2024-03-15T10:32:38.286848Z, by hand: 1710498758.286848
    assert event.time == pytest.approx(1710498758.286848)


def test_paddle_rotation_header_with_two_signatures_and_two_secrets() -> None:
    provider, secrets, _ = plugin(PADDLE, {"PADDLE_SECRET": f"pdl_old, {PADDLE_SECRET}"})
    name, header, ts, _ = PADDLE_VECTORS[0]
    body = (PAYLOADS / name).read_bytes().rstrip(b"\n")
    two = header.replace(";h1=", ";h1=" + "0" * 64 + ";h1=")
    event = provider.verify(body, {"Paddle-Signature": two}, secrets, tolerance=5, now=ts)
    assert event.type == "customer.created"


def test_square_published_vector_verifies_over_the_public_url() -> None:
    provider, secrets, public_url = plugin(SQUARE, {"SQUARE_SECRET": SQUARE_SECRET})
    assert provider.signs_url
    body = (PAYLOADS / "square__webhooks.test_notification.signed_vector.json").read_bytes()
    headers = {"x-square-hmacsha256-signature": SQUARE_SIGNATURE}
    event = provider.verify(body, headers, secrets, tolerance=300, now=0, url=public_url or "")
    assert event.id == "ac3ac95b-f97d-458c-a6e6-18981597e05f"
    assert event.type == "webhooks.test_notification"
    # created_at 2022-07-13T20:30:59.037339943Z (nanoseconds cut to microseconds)
    assert event.time == pytest.approx(1657744259.037339)
    # The URL bridge itself saw behind a proxy is not what Square signed.
    with pytest.raises(SignatureError):
        provider.verify(body, headers, secrets, tolerance=300, now=0, url="http://10.0.0.5/x")


def test_sign_produces_what_the_documented_scheme_checks() -> None:
    provider, secrets, _ = plugin(PADDLE, {"PADDLE_SECRET": "pdl_test"})
    body = b'{"event_id":"evt_1","event_type":"x.y","occurred_at":"2024-01-01T00:00:00Z"}'
    headers = provider.sign(body, secrets[0], now=1700000000)
    # By hand, as Paddle documents it: HMAC-SHA256(secret, ts + ":" + body), hex.
    mac = hmac.new(b"pdl_test", b"1700000000:" + body, hashlib.sha256).hexdigest()
    assert headers["Paddle-Signature"] == f"ts=1700000000;h1={mac}"
    provider, secrets, url = plugin(SQUARE, {"SQUARE_SECRET": "k"})
    headers = provider.sign(body, "k", now=0, url=url or "")
    expected = base64.b64encode(
        hmac.new(b"k", (url or "").encode() + body, hashlib.sha256).digest()
    )
    assert headers["x-square-hmacsha256-signature"] == expected.decode()


def square_with(lines: str) -> str:
    """A Square-like mapping whose signature block is ``lines`` (plus header/event_type)."""
    block = "".join(f"  {line}\n" for line in lines.splitlines())
    return (
        "provider: generic-hmac\nsecrets: k\nsignature:\n"
        "  header: x-sig\n  event_type: {body: type}\n" + block + RULES
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('signed: "{timestamp}:{body}"\nevent_id: {body: id}', "but no `timestamp` is configured"),
        ('signed: "{url}"\nevent_id: {body: id}', "`signed` must contain {body}"),
        ('signed: "{body}{nonce}"\nevent_id: {body: id}', "`signed` names nonce"),
        ("timestamp: {unit: s}\nevent_id: {body: id}", "`timestamp` needs a `header`"),
        (
            "timestamp: {header: X-Ts}\nevent_id: {body: id}",
            "a timestamp that is not in `signed` proves nothing",
        ),
        ('signed: "{id}.{body}"\nevent_id: {body: id}', "`event_id` must come from a `header`"),
        ("event_id: {header: X-Id, body: id}", "give exactly one of `header` or `body`"),
        ("event_id: {body: 'a.'}", "`body` is not a JMESPath expression"),
    ],
)
def test_lint_refuses_unsafe_configurations(lines: str, message: str) -> None:
    _, problems = load_text(square_with(lines), "src", {}, "m.yaml")
    assert len(problems) == 1, [str(p) for p in problems]
    assert message in problems[0].message
    assert problems[0].file == "m.yaml"
    assert problems[0].line >= 4  # inside the signature block


def test_lint_refuses_no_event_id_and_no_secret() -> None:
    text = SQUARE.replace("  event_id: {body: event_id}\n", "")
    _, problems = load_text(text, "src", {"SQUARE_SECRET": "k"}, "m.yaml")
    # Reported at the signature block (its first key: line 6, column 3).
    assert [str(p) for p in problems] == [
        "m.yaml:6:3: required: signature: missing required key 'event_id'"
    ]
    text = SQUARE.replace("secrets: ${SQUARE_SECRET}", 'secrets: ""')
    _, problems = load_text(text, "src", {}, "m.yaml")
    assert [p.kind for p in problems] == ["secret"]


def test_generic_hmac_without_signature_block_is_a_finding() -> None:
    text = "provider: generic-hmac\nsecrets: x\n" + RULES
    _, problems = load_text(text, "src", {}, "m.yaml")
    assert [str(p) for p in problems] == [
        "m.yaml:1:11: required: provider 'generic-hmac' needs a `signature` block (how it signs)"
    ]


def test_a_builtin_provider_takes_no_signature_block(tmp_path: Path) -> None:
    text = "provider: stripe\nsecrets: x\nsignature: {header: X}\n" + RULES
    _, problems = load_text(text, "src", {}, "m.yaml")
    assert [str(p) for p in problems] == [
        "m.yaml:3:1: schema: provider 'stripe' takes no `signature` block"
    ]


def test_square_vector_through_intake_behind_a_proxy(redis_url: str, tmp_path: Path) -> None:
    """The web app passes the mapping's public URL to verify(): bridge itself is
    reached at http://localhost/..., Square signed https://webhook.site/...."""
    from bridge.intake import create_app
    from bridge.settings import Settings

    (tmp_path / "square.yaml").write_text(SQUARE)
    env = {
        "REDIS_URL": redis_url,
        "BRIDGE_MAPPINGS_DIR": str(tmp_path),
        "SQUARE_SECRET": SQUARE_SECRET,
        "BRIDGE_LOG_LEVEL": "warning",
    }
    app = create_app(Settings.from_env(env))
    body = (PAYLOADS / "square__webhooks.test_notification.signed_vector.json").read_bytes()
    headers = {"x-square-hmacsha256-signature": SQUARE_SIGNATURE}
    resp = app.test_client().post("/webhooks/square", data=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"status": "accepted", "id": "ac3ac95b-f97d-458c-a6e6-18981597e05f"}
    # Without public_url the request's own URL is what is checked: refused.
    without = SQUARE.replace(f"options:\n  public_url: {SQUARE_URL}\n", "")
    assert "public_url" not in without
    (tmp_path / "square.yaml").write_text(without)
    app = create_app(Settings.from_env(env))
    resp = app.test_client().post("/webhooks/square", data=body, headers=headers)
    assert resp.status_code == 400
    assert resp.get_json()["reason"] == "bad_signature"
