"""Body size limits through real gunicorn (chunked bodies have no Content-Length)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

from redis import Redis

from bridge import keys
from tests.intake.conftest import base_env
from tests.processes import gunicorn


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


def test_chunked_body_over_limit_is_413(redis: Redis, redis_url: str) -> None:
    env = {**base_env(redis_url), "BRIDGE_MAX_BODY_BYTES": "65536"}
    with gunicorn(env, workers=1) as url:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request(
            "POST",
            "/webhooks/stripe",
            body=_chunks(4 * 65536),
            headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 413
        assert b"payload_too_large" in resp.read()
        conn.close()
    assert redis.llen(keys.INBOX) == 0


def test_declared_length_over_limit_is_refused_before_reading(redis: Redis, redis_url: str) -> None:
    env = {**base_env(redis_url), "BRIDGE_MAX_BODY_BYTES": "65536"}
    with gunicorn(env, workers=1) as url:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        # Announce 100 MB but send only the headers: the answer must come anyway.
        conn.putrequest("POST", "/webhooks/stripe")
        conn.putheader("Content-Length", str(100 * 1024 * 1024))
        conn.putheader("Stripe-Signature", "t=1,v1=00")
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413
        conn.close()
