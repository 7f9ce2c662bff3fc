"""``bridge send`` against a real gunicorn, as a user runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
from redis import Redis

from bridge import keys
from bridge.envelope import Envelope
from tests.intake.conftest import base_env
from tests.processes import BIN, gunicorn


def run_send(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), "send", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_send_signs_like_stripe_and_the_event_is_accepted(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    payload = tmp_path / "event.json"
    payload.write_bytes(
        orjson.dumps(
            {
                "id": "evt_send_1",
                "type": "checkout.session.completed",
                "created": 1700000000,
                "data": {"object": {"id": "cs_1", "mode": "payment", "payment_status": "paid"}},
            }
        )
    )
    env = base_env(redis_url)
    with gunicorn(env, workers=1) as url:
        first = run_send(env, "stripe", str(payload), "--url", url)
        again = run_send(env, "stripe", str(payload), "--url", url)
        fresh = run_send(env, "stripe", str(payload), "--url", url, "--new-id")
    assert first.returncode == 0, first.stderr
    assert '"status":"accepted"' in first.stdout
    assert '"status":"duplicate"' in again.stdout
    assert '"status":"accepted"' in fresh.stdout
    stored = [Envelope.decode(r) for r in redis.lrange(keys.INBOX, 0, -1)]
    assert stored[0].id == "evt_send_1"
    assert len(stored) == 2


def test_send_explains_an_unreachable_url(redis_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "event.json"
    payload.write_text('{"id": "evt_1", "type": "x", "created": 1}')
    result = run_send(base_env(redis_url), "stripe", str(payload), "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "could not reach" in result.stderr


def test_send_refuses_an_unknown_source(redis_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "event.json"
    payload.write_text("{}")
    result = run_send(base_env(redis_url), "paypal", str(payload))
    assert result.returncode == 2
    assert "no mapping file for source 'paypal'" in result.stderr
