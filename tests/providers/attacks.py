"""The attack table every revenue provider faces, through the real app and real Redis.

A provider's test module subclasses :class:`AttackTable` with its :class:`Case`: how
its bodies are made and signed (by the documented scheme, tests/revenue_signing.py). The
table is the one Stripe faces in tests/intake/test_webhooks.py: wrong secret, tampered
body, missing and malformed header, stale and future timestamps where signed, replay,
rotation, and no secret in any answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from bridge import keys
from bridge.envelope import Envelope
from bridge.intake import create_app
from bridge.settings import Settings
from tests.intake.conftest import LogLines, base_env
from tests.revenue_secrets import REVENUE_ENV


@dataclass(frozen=True)
class Case:
    """How one provider's webhooks are made and signed."""

    source: str
    env_var: str
    secret: str
    next_secret: str
    #: A new event (a new id) each call.
    make_body: Callable[[], bytes]
    #: (body, secret, unix seconds) -> headers, as the provider signs.
    sign: Callable[[bytes, str, int], dict[str, str]]
    signature_header: str
    #: Whether a timestamp is signed (then stale/future ones are refused).
    timestamped: bool = False
    #: Whether the signature covers the body (Chargebee's Basic auth does not).
    signs_body: bool = True
    #: For ids carried in an unsigned header: the same headers with a fresh id.
    fresh_unsigned_id: Callable[[dict[str, str]], dict[str, str]] | None = None
    #: Signature header values that must be refused as malformed.
    malformed: tuple[str, ...] = field(default=("garbage", "=", "a,b;c"))

    def __str__(self) -> str:
        return self.source


def inbox(redis: Redis) -> list[Envelope]:
    return [Envelope.decode(raw) for raw in redis.lrange(keys.INBOX, 0, -1)]


class AttackTable:
    """Subclass with ``case = Case(...)`` (class name starting with ``Test``)."""

    case: Case

    @pytest.fixture
    def logs(self) -> LogLines:
        return LogLines()

    @pytest.fixture
    def make_app(self, redis_url: str, logs: LogLines) -> Callable[..., Flask]:
        def build(**overrides: str) -> Flask:
            env = {**base_env(redis_url), **REVENUE_ENV, **overrides}
            app = create_app(Settings.from_env(env), log_stream=logs)
            app.testing = True
            return app

        return build

    @pytest.fixture
    def client(self, make_app: Callable[..., Flask]) -> Iterator[FlaskClient]:
        with make_app().test_client() as c:
            yield c

    def post(
        self, client: FlaskClient, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        resp = client.post(f"/webhooks/{self.case.source}", data=body, headers=headers)
        return resp.status_code, resp.get_json()

    def signed(self, body: bytes, secret: str | None = None, offset: int = 0) -> dict[str, str]:
        return self.case.sign(body, secret or self.case.secret, int(time.time()) + offset)

    # ---- the table ------------------------------------------------------------------

    def test_valid_signature_is_accepted_and_durable(
        self, client: FlaskClient, redis: Redis
    ) -> None:
        body = self.case.make_body()
        status, answer = self.post(client, body, self.signed(body))
        assert (status, answer["status"]) == (200, "accepted"), answer
        [stored] = inbox(redis)
        assert (stored.source, stored.id) == (self.case.source, answer["id"])
        assert stored.body == orjson.loads(body)

    def test_wrong_secret_is_rejected(self, client: FlaskClient, redis: Redis) -> None:
        body = self.case.make_body()
        status, answer = self.post(client, body, self.signed(body, self.case.next_secret))
        assert (status, answer["reason"]) == (400, "bad_signature")
        assert inbox(redis) == []

    def test_tampered_body_is_rejected(self, client: FlaskClient, redis: Redis) -> None:
        body = self.case.make_body()
        headers = self.signed(body)
        tampered = body.replace(b'"', b' "', 1)  # still JSON, one byte longer
        status, answer = self.post(client, tampered, headers)
        if not self.case.signs_body:
            # Documented weaker guarantee (Basic auth): the credentials are checked, the
            # body is not signed by anyone.
            assert (status, answer["status"]) == (200, "accepted")
            return
        assert (status, answer["reason"]) == (400, "bad_signature")
        assert inbox(redis) == []

    def test_one_flipped_bit_of_the_signature_is_rejected(
        self, client: FlaskClient, redis: Redis
    ) -> None:
        body = self.case.make_body()
        headers = self.signed(body)
        value = headers[self.case.signature_header]
        # Change one character near the end (inside the MAC / the credentials).
        i = len(value) - 3
        # A digit, so that the change is one whatever the encoding: "A" for "a" would be
        # the same byte in a case-insensitive hex signature (Paddle, Lemon Squeezy).
        flipped = value[:i] + ("0" if value[i].lower() != "0" else "1") + value[i + 1 :]
        status, answer = self.post(client, body, {**headers, self.case.signature_header: flipped})
        assert status == 400
        assert answer["reason"] in {"bad_signature", "malformed_signature"}
        assert inbox(redis) == []

    def test_missing_signature_header_is_rejected(self, client: FlaskClient) -> None:
        body = self.case.make_body()
        headers = self.signed(body)
        del headers[self.case.signature_header]
        status, answer = self.post(client, body, headers)
        assert (status, answer["reason"]) == (400, "missing_signature")

    def test_malformed_signature_header_is_rejected(
        self, client: FlaskClient, redis: Redis
    ) -> None:
        body = self.case.make_body()
        headers = self.signed(body)
        value = headers[self.case.signature_header]
        for bad in (*self.case.malformed, "", value[:10], value + "," + value[:5]):
            status, answer = self.post(client, body, {**headers, self.case.signature_header: bad})
            assert status == 400, bad
            assert answer["reason"] in {
                "malformed_signature",
                "missing_signature",
                "bad_signature",
            }, bad
            assert answer["error"]
        assert inbox(redis) == []

    @pytest.mark.parametrize("offset", [-301, 301, -24 * 3600, 24 * 3600])
    def test_timestamp_outside_tolerance_is_rejected(
        self, offset: int, client: FlaskClient, redis: Redis
    ) -> None:
        if not self.case.timestamped:
            pytest.skip(f"{self.case.source} signs no timestamp (replays stop at dedup)")
        body = self.case.make_body()
        status, answer = self.post(client, body, self.signed(body, offset=offset))
        assert (status, answer["reason"]) == (400, "timestamp_out_of_tolerance")
        assert inbox(redis) == []

    @pytest.mark.parametrize("offset", [-290, 290])
    def test_timestamp_inside_tolerance_is_accepted(self, offset: int, client: FlaskClient) -> None:
        body = self.case.make_body()
        status, answer = self.post(client, body, self.signed(body, offset=offset))
        assert (status, answer["status"]) == (200, "accepted")

    def test_redelivery_is_a_duplicate(self, client: FlaskClient, redis: Redis) -> None:
        body = self.case.make_body()
        first = self.post(client, body, self.signed(body))
        # The provider retries later: a new signature (new timestamp), the same event.
        again = self.post(client, body, self.signed(body, offset=1))
        assert first[1]["status"] == "accepted"
        assert again == (200, {"status": "duplicate", "id": first[1]["id"]})
        assert len(inbox(redis)) == 1

    def test_replay_under_a_fresh_unsigned_id_is_a_duplicate(
        self, client: FlaskClient, redis: Redis
    ) -> None:
        if self.case.fresh_unsigned_id is None:
            pytest.skip(f"{self.case.source}'s event id is signed (or derived from the body)")
        body = self.case.make_body()
        headers = self.signed(body)
        first = self.post(client, body, headers)
        again = self.post(client, body, self.case.fresh_unsigned_id(headers))
        assert first[1]["status"] == "accepted"
        assert again[1]["status"] == "duplicate"
        assert len(inbox(redis)) == 1

    def test_secret_rotation_accepts_either_secret(
        self, make_app: Callable[..., Flask], redis: Redis
    ) -> None:
        rotated = f"{self.case.secret},{self.case.next_secret}"
        client = make_app(**{self.case.env_var: rotated}).test_client()
        for secret in (self.case.secret, self.case.next_secret):
            body = self.case.make_body()
            status, answer = self.post(client, body, self.signed(body, secret))
            assert (status, answer["status"]) == (200, "accepted"), secret
        body = self.case.make_body()
        status, _ = self.post(client, body, self.signed(body, "user:a-third-secret"))
        assert status == 400
        assert len(inbox(redis)) == 2

    def test_answers_and_logs_never_hold_the_secret(
        self, client: FlaskClient, logs: LogLines
    ) -> None:
        body = self.case.make_body()
        for headers in (self.signed(body), self.signed(body, self.case.next_secret), {}):
            resp = client.post(f"/webhooks/{self.case.source}", data=body, headers=headers)
            assert self.case.secret not in resp.get_data(as_text=True)
        assert self.case.secret not in logs.getvalue()
        assert self.case.secret.split(":")[-1] not in logs.getvalue()


def deliver(
    app: Flask, body: bytes, headers: dict[str, str], source: str, redis: Redis
) -> tuple[Envelope, list[dict[str, Any]]]:
    """POST a signed body to intake, check it is durable, and map what was stored (with
    an in-memory identity store): the calls a worker would send."""
    from bridge.mappings import MemoryIdentityStore

    resp = app.test_client().post(f"/webhooks/{source}", data=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    mapping = app.extensions["bridge"].catalogue.get(source).mapping
    if answer["status"] == "ignored":
        return Envelope(source, answer["id"], "", 0.0, 0.0, orjson.loads(body)), []
    assert answer["status"] == "accepted", answer
    [stored] = [e for e in inbox(redis) if e.id == answer["id"]]
    assert stored.body == orjson.loads(body)
    return stored, mapping.evaluate(stored, MemoryIdentityStore())


def app_for(redis_url: str, **overrides: str) -> Flask:
    env = {**base_env(redis_url), **REVENUE_ENV, **overrides}
    app = create_app(Settings.from_env(env), log_stream=LogLines())
    app.testing = True
    return app
