"""Recurly: the attack table (timestamp in milliseconds, several signatures) and the
documented JSON notifications through intake and the shipped mapping."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from redis import Redis

from bridge.errors import SignatureError, TimestampOutOfTolerance
from bridge.providers.recurly import RecurlyProvider
from tests import revenue_signing as signing
from tests.conftest import PAYLOADS, payload_files
from tests.providers.attacks import AttackTable, Case, app_for, deliver
from tests.revenue_secrets import RECURLY_SECRET


def make_body() -> bytes:
    return orjson.dumps(
        {
            "id": uuid.uuid4().hex[:12],
            "object_type": "subscription",
            "site_id": "qc326l1hl8k9",
            "event_type": "created",
            "event_time": "2026-11-01T10:00:00Z",
            "uuid": uuid.uuid4().hex,
        }
    )


class TestRecurlyAttacks(AttackTable):
    case = Case(
        source="recurly",
        env_var="RECURLY_WEBHOOK_SECRET",
        secret=RECURLY_SECRET,
        next_secret="recurly-regenerated-secret",
        make_body=make_body,
        sign=lambda body, secret, ts: signing.recurly(body, secret, ts * 1000),
        signature_header="recurly-signature",
        timestamped=True,
    )


def test_several_signatures_after_a_key_regeneration() -> None:
    body = make_body()
    now_ms = 1_700_000_000_000
    old = signing.recurly(body, "old-key", now_ms)["recurly-signature"].split(",")[1]
    header = signing.recurly(body, RECURLY_SECRET, now_ms, extra=f",{old}")
    event = RecurlyProvider().verify(body, header, ["old-key"], tolerance=300, now=now_ms / 1000)
    assert event.type == "subscription.created"
    assert event.time == 1793527200.0  # event_time


def test_the_timestamp_is_milliseconds() -> None:
    body = make_body()
    now = 1_700_000_000
    # 4 minutes old in milliseconds: fine. Read as seconds it would be 50,000 years ahead.
    header = signing.recurly(body, RECURLY_SECRET, (now - 240) * 1000)
    RecurlyProvider().verify(body, header, [RECURLY_SECRET], tolerance=300, now=now)
    header = signing.recurly(body, RECURLY_SECRET, (now - 301) * 1000)
    with pytest.raises(TimestampOutOfTolerance):
        RecurlyProvider().verify(body, header, [RECURLY_SECRET], tolerance=300, now=now)


def test_a_signature_without_timestamp_is_malformed() -> None:
    body = make_body()
    sig = signing.recurly(body, RECURLY_SECRET)["recurly-signature"].split(",")[1]
    with pytest.raises(SignatureError) as info:
        RecurlyProvider().verify(
            body, {"recurly-signature": sig}, [RECURLY_SECRET], tolerance=300, now=time.time()
        )
    assert info.value.reason == "malformed_signature"


present = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="shared payloads absent")
REAL = payload_files("recurly")


@present
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_real_payload_is_accepted_and_mapped(path, redis_url: str, redis: Redis) -> None:  # type: ignore[no-untyped-def]
    body = path.read_bytes()
    stored, [call] = deliver(
        app_for(redis_url), body, signing.recurly(body, RECURLY_SECRET), "recurly", redis
    )
    event = orjson.loads(body)
    assert stored.id == event["id"]
    assert stored.type == f"{event['object_type']}.{event['event_type']}"
    assert call["anonymousId"] == f"recurly:{event['uuid']}"
    expected = {
        "recurly__subscription.created.json": ("Subscription Started", "2022-07-26T22:01:56.000Z"),
        "recurly__payment.scheduled.json": ("Payment Scheduled", "2022-07-27T21:43:53.000Z"),
    }[path.name]
    assert (call["event"], call["timestamp"]) == expected
