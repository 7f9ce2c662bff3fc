"""Real provider payloads (../shared/fixtures/payloads), byte for byte, signed for real."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from bridge import keys
from bridge.envelope import Envelope
from tests.conftest import payload_files
from tests.signing import GITHUB_SECRET, STRIPE_SECRET, github_headers, stripe_headers

STRIPE = payload_files("stripe") + payload_files("stripe_basil")
GITHUB = payload_files("github")


def _expected(app: Flask, source: str, event_type: str) -> str:
    mapping = app.extensions["bridge"].catalogue.get(source).mapping
    return "accepted" if mapping.handles(event_type) else "ignored"


@pytest.mark.skipif(not STRIPE, reason="shared/fixtures/payloads is not present")
@pytest.mark.parametrize("path", STRIPE, ids=lambda p: p.stem)
def test_real_stripe_payload_is_verified(
    path: Path, app: Flask, client: FlaskClient, redis: Redis
) -> None:
    body = path.read_bytes()
    event = orjson.loads(body)
    resp = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {
        "status": _expected(app, "stripe", event["type"]),
        "id": event["id"],
    }
    if resp.get_json()["status"] == "accepted":
        [stored] = [Envelope.decode(r) for r in redis.lrange(keys.INBOX, 0, -1)]
        assert stored.body == event
        assert stored.time == event["created"]
        assert stored.type == event["type"]


@pytest.mark.skipif(not GITHUB, reason="shared/fixtures/payloads is not present")
@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.stem)
def test_real_github_payload_is_verified(path: Path, app: Flask, client: FlaskClient) -> None:
    body = path.read_bytes()
    name = path.stem.split("__", 1)[1].split(".")[0]  # github__sponsorship.created -> sponsorship
    action = orjson.loads(body).get("action")
    event_type = f"{name}.{action}" if action else name
    resp = client.post(
        "/webhooks/github", data=body, headers=github_headers(body, GITHUB_SECRET, name)
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == _expected(app, "github", event_type)


def test_fixture_folder_is_used_when_present() -> None:
    # Guards the skips above: in this repository's CI the shared folder exists.
    from tests.conftest import PAYLOADS

    if PAYLOADS.is_dir():
        assert len(STRIPE) >= 15
        assert len(GITHUB) >= 3
