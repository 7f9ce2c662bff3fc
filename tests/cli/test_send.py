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
        # The full webhook URL (as a provider's dashboard shows it) works too.
        full = run_send(env, "stripe", str(payload), "--url", f"{url}/webhooks/stripe/", "--new-id")
    assert first.returncode == 0, first.stderr
    assert '"status":"accepted"' in first.stdout
    assert '"status":"duplicate"' in again.stdout
    assert '"status":"accepted"' in fresh.stdout
    assert full.returncode == 0, full.stdout + full.stderr
    assert f"POST {url}/webhooks/stripe -> 200" in full.stdout
    stored = [Envelope.decode(r) for r in redis.lrange(keys.INBOX, 0, -1)]
    assert stored[0].id == "evt_send_1"
    assert len(stored) == 3


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


def test_send_says_a_url_without_scheme_lacks_one(redis_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "event.json"
    payload.write_text('{"id": "evt_1", "type": "x", "created": 1}')
    result = run_send(base_env(redis_url), "stripe", str(payload), "--url", "127.0.0.1:8000")
    assert result.returncode == 2
    assert "127.0.0.1:8000 is not an http:// or https:// URL" in result.stderr
    assert "did you mean http://127.0.0.1:8000?" in result.stderr
    assert "is the web process running" not in result.stderr


def test_send_refuses_the_webhook_url_of_another_source(redis_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "event.json"
    payload.write_text('{"id": "evt_1", "type": "x", "created": 1}')
    url = "http://127.0.0.1:9/webhooks/github"
    result = run_send(base_env(redis_url), "stripe", str(payload), "--url", url)
    assert result.returncode == 2
    assert "is the webhook URL of source 'github', not 'stripe'" in result.stderr


def test_send_new_id_on_a_payload_that_is_not_an_object(redis_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "l.json"
    payload.write_text("[1,2]\n")
    result = run_send(base_env(redis_url), "stripe", str(payload), "--new-id")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is not a JSON object, so it has no event id for --new-id to replace" in result.stderr


def test_send_names_a_missing_mappings_folder(redis_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "event.json"
    payload.write_text("{}")
    env = {**base_env(redis_url), "BRIDGE_MAPPINGS_DIR": str(tmp_path / "nope")}
    result = run_send(env, "stripe", str(payload))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: BRIDGE_MAPPINGS_DIR={tmp_path / 'nope'}: the folder does not exist"
    )
