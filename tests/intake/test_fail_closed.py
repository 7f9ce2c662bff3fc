"""Any input gets a 2xx or a 4xx with a reason, counted; verifiers fail closed
(issue 8, items 2 and 4), through the real app and Redis."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from bridge import keys, metrics
from bridge.providers import VerifiedEvent
from tests.signing import (
    CLERK_SECRET,
    STRIPE_SECRET,
    clerk_event,
    standard_headers,
    stripe_event,
    stripe_headers,
)


def rejected(redis: Redis, source: str, reason: str) -> int:
    field = metrics.WEBHOOKS_REJECTED.field(source=source, reason=reason)
    return int(redis.hget(keys.METRICS, field) or 0)


def _v1(body: bytes, timestamp: int) -> str:
    return stripe_headers(body, STRIPE_SECRET, timestamp)["Stripe-Signature"].split(",")[1]


def test_stripe_old_signature_with_a_fresh_second_t_is_refused(
    client: FlaskClient, redis: Redis
) -> None:
    body = stripe_event()
    now, old = int(time.time()), int(time.time()) - 7 * 24 * 3600
    header = f"{_v1(body, old)}, t={now},t={old}"
    resp = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header})
    assert resp.status_code == 400
    assert resp.get_json()["reason"] == "malformed_signature"
    assert redis.llen(keys.INBOX) == 0
    assert rejected(redis, "stripe", "malformed_signature") == 1


def test_stripe_non_ascii_v1_is_400_not_500(client: FlaskClient, redis: Redis) -> None:
    body = stripe_event()
    header = f"t={int(time.time())},v1={'é' * 64}"
    resp = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header})
    assert resp.status_code == 400
    assert resp.get_json()["reason"] == "malformed_signature"
    assert rejected(redis, "stripe", "malformed_signature") == 1


def test_standard_webhooks_out_of_range_timestamp_is_400_not_500(
    client: FlaskClient, redis: Redis
) -> None:
    body = clerk_event()
    headers = standard_headers(body, CLERK_SECRET)
    headers["webhook-timestamp"] = "9" * 20
    resp = client.post("/webhooks/clerk", data=body, headers=headers)
    assert resp.status_code == 400
    assert resp.get_json()["reason"] == "malformed_signature"
    assert rejected(redis, "clerk", "malformed_signature") == 1


class _Crashing:
    """A provider plugin with a bug: its verify() raises something unexpected."""

    identifier: ClassVar[str] = "crashing"
    signs_event_id: ClassVar[bool] = True

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        tolerance: int,
        now: float,
    ) -> VerifiedEvent:
        raise self.exc

    def sign(self, body: bytes, secret: str, **kw: object) -> dict[str, str]:
        return {}


def _install(app: Flask, provider: object) -> None:
    """Serve the stripe source with ``provider`` (a plugin under test)."""
    catalogue = app.extensions["bridge"].catalogue
    entry = catalogue.sources["stripe"]
    catalogue.sources["stripe"] = dataclasses.replace(entry, provider=provider)


@pytest.mark.parametrize(
    "exc", [TypeError("unsupported operand"), OverflowError("too big"), KeyError("x")]
)
def test_a_verifier_that_raises_fails_closed_as_a_counted_400(
    app: Flask, redis: Redis, exc: Exception, logs: object
) -> None:
    _install(app, _Crashing(exc))
    body = stripe_event()
    resp = app.test_client().post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
    )
    assert resp.status_code == 400
    assert resp.get_json() == {
        "error": "the signature could not be verified",
        "reason": "unverifiable",
    }
    assert redis.llen(keys.INBOX) == 0
    assert rejected(redis, "stripe", "unverifiable") == 1


class _UnsignedIdWithoutDigest:
    """A third-party plugin that says its id is unsigned but gives no digest."""

    identifier: ClassVar[str] = "careless"
    signs_event_id: ClassVar[bool] = False

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        tolerance: int,
        now: float,
    ) -> VerifiedEvent:
        return VerifiedEvent(id="x", type="checkout.session.completed", time=now, body={}, raw=body)

    def sign(self, body: bytes, secret: str, **kw: object) -> dict[str, str]:
        return {}


def test_a_plugin_without_replay_protection_is_refused(app: Flask, redis: Redis) -> None:
    _install(app, _UnsignedIdWithoutDigest())
    resp = app.test_client().post("/webhooks/stripe", data=b"{}")
    assert (resp.status_code, resp.get_json()["reason"]) == (400, "unverifiable")
    assert redis.llen(keys.INBOX) == 0
