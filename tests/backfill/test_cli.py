"""``bridge backfill`` as an operator runs it: a real process, a local Stripe API."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any

import orjson
from redis import Redis

from bridge import keys
from bridge.backfill import Checkpoint
from tests.backfill.conftest import corpus, env
from tests.processes import BIN
from tests.stripe_server import StripeServer


def run(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), "backfill", *args],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def seed(server: StripeServer, now: int, n: int) -> list[str]:
    """n invoice.paid events a minute apart; ids newest first."""
    ids = []
    for i in range(n):
        server.add_event(
            corpus(
                "inv_paid_basil_subscription_create", created=now - 3600 + 60 * i, id=f"evt_cli_{i}"
            )
        )
        ids.append(f"evt_cli_{i}")
    return ids[::-1]


def test_backfill_shows_progress_and_a_summary(
    redis: Redis, redis_url: str, stripe_api: StripeServer, now: int
) -> None:
    seed(stripe_api, now, 5)
    result = run(env(redis_url, stripe_api.url), "stripe", "--since", "2h", "--page-size", "2")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "page " in line]
    assert len(progress) == 3
    assert progress[-1].startswith(
        "backfill stripe: page 3, listed 5, new 5, duplicates 0, ignored 0,"
    )
    assert "events/s" in progress[-1]
    assert result.stdout.strip() == (
        "backfill stripe done: listed 5, new 5, duplicates 0, ignored 0"
    )
    assert redis.llen(keys.INBOX) == 5
    # Again: everything is a duplicate, as JSON.
    again = run(env(redis_url, stripe_api.url), "stripe", "--since", "2h", "--json")
    summary: dict[str, Any] = orjson.loads(again.stdout)
    assert (summary["listed"], summary["new"], summary["duplicates"]) == (5, 0, 5)
    assert summary["done"] is True
    assert redis.llen(keys.INBOX) == 5


def test_refuses_more_than_30_days_with_a_clear_message(
    redis_url: str, stripe_api: StripeServer
) -> None:
    result = run(env(redis_url, stripe_api.url), "stripe", "--since", "31d")
    assert result.returncode == 2
    assert "Stripe keeps events for 30 days" in result.stderr
    assert "Traceback" not in result.stderr
    assert stripe_api.requests == []  # refused before asking Stripe anything


def test_without_a_key_it_says_which_permission(redis_url: str, stripe_api: StripeServer) -> None:
    environ = {**env(redis_url, stripe_api.url), "STRIPE_API_KEY": ""}
    result = run(environ, "stripe", "--since", "1d")
    assert result.returncode == 2
    assert "STRIPE_API_KEY is not set" in result.stderr
    assert "Events: Read" in result.stderr


def test_bad_key_fails_without_leaking_it(redis_url: str, stripe_api: StripeServer) -> None:
    environ = {**env(redis_url, stripe_api.url), "STRIPE_API_KEY": "rk_test_revoked_key"}
    result = run(environ, "stripe", "--since", "1d")
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "rk_test_revoked_key" not in result.stderr + result.stdout


def test_sigterm_keeps_the_checkpoint_and_resume_finishes(
    redis: Redis, redis_url: str, stripe_api: StripeServer, now: int
) -> None:
    newest_first = seed(stripe_api, now, 5)
    # The request for page 2 waits until the test lets it go.
    gate = threading.Event()
    stripe_api.holds[newest_first[1]] = gate
    environ = env(redis_url, stripe_api.url)
    proc = subprocess.Popen(
        [str(BIN / "bridge"), "backfill", "stripe", "--since", "2h", "--page-size", "2"],
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert stripe_api.held.wait(timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        gate.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130, stderr
    assert f"checkpoint kept after {newest_first[1]}" in stderr
    assert "bridge backfill stripe --resume" in stderr
    saved = Checkpoint.load(redis, "stripe")
    assert saved is not None
    assert (saved.cursor, saved.done, saved.counts.listed) == (newest_first[1], False, 2)

    # A new run without --resume is refused; --resume continues after the cursor.
    refused = run(environ, "stripe", "--since", "2h")
    assert refused.returncode == 2
    assert "--resume" in refused.stderr
    del stripe_api.holds[newest_first[1]]
    resumed = run(environ, "stripe", "--resume", "--page-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"after {newest_first[1]}" in resumed.stderr
    assert "listed 5, new 5, duplicates 0" in resumed.stdout
    assert redis.llen(keys.INBOX) == 5


def test_rate_limited_backfill_loses_nothing(
    redis: Redis, redis_url: str, stripe_api: StripeServer, now: int
) -> None:
    from tests.stripe_server import Failure

    seed(stripe_api, now, 4)
    stripe_api.fail_next(
        Failure(429, {"Retry-After": "0"}, "invalid_request_error", "Too many requests"),
        Failure(500, {}, "api_error"),
    )
    result = run(env(redis_url, stripe_api.url), "stripe", "--since", "2h", "--page-size", "2")
    assert result.returncode == 0, result.stderr
    assert "listed 4, new 4" in result.stdout
    assert redis.llen(keys.INBOX) == 4


def test_reconcile_command_runs_once_and_lists_undelivered(
    redis: Redis, redis_url: str, stripe_api: StripeServer, now: int
) -> None:
    stripe_api.add_event(
        corpus("inv_payment_failed_2025", created=now - 900, _delivery_success=False)
    )
    environ = env(redis_url, stripe_api.url)
    result = subprocess.run(
        [str(BIN / "bridge"), "reconcile", "stripe"],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "reconcile stripe: listed 1, reconciled 1 (never received as webhooks), already "
        "received 0, ignored 0, undelivered by Stripe 1",
        "reconciled evt_corpus_inv_failed",
    ]
    listed = subprocess.run(
        [str(BIN / "bridge"), "reconcile", "stripe", "--undelivered", "--json"],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert orjson.loads(listed.stdout) == [{"id": "evt_corpus_inv_failed", "created": now - 900}]


def test_api_down_mid_backfill_keeps_the_checkpoint_and_resume_loses_nothing(
    redis: Redis, redis_url: str, stripe_api: StripeServer, now: int
) -> None:
    from tests.stripe_server import Failure

    newest_first = seed(stripe_api, now, 5)
    # Page 2 fails on every attempt (5) of this run: Stripe is down.
    stripe_api.fail_next(*[Failure(503, after=newest_first[1]) for _ in range(5)])
    environ = env(redis_url, stripe_api.url)
    failed = run(environ, "stripe", "--since", "2h", "--page-size", "2")
    assert failed.returncode == 1
    assert "HTTP 503" in failed.stderr
    assert "bridge backfill stripe --resume" in failed.stderr
    saved = Checkpoint.load(redis, "stripe")
    assert saved is not None
    assert (saved.cursor, saved.counts.listed, saved.done) == (newest_first[1], 2, False)
    resumed = run(environ, "stripe", "--resume", "--page-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "listed 5, new 5, duplicates 0" in resumed.stdout
    assert redis.llen(keys.INBOX) == 5
