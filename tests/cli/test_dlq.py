"""``bridge dlq`` as an operator runs it (the console script, a real Redis): clear
errors and exit codes, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from decimal import Decimal

import pytest
from redis import Redis

from bridge.delivery.deadletter import DeadLetters, calls_entry
from tests.processes import BIN


def run_dlq(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), "dlq", *args],
        env={**os.environ, "REDIS_URL": redis_url, "BRIDGE_REDIS_TIMEOUT": "2"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def add_entry(redis: Redis, message_id: str, amount: Decimal = Decimal("19.99")) -> str:
    call = {"type": "track", "messageId": message_id, "properties": {"total": amount}}
    return DeadLetters(redis).add(calls_entry([call], "rejected: 400")).id


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_list_refuses_a_limit_below_one(redis: Redis, redis_url: str, limit: str) -> None:
    add_entry(redis, "m1")
    result = run_dlq(redis_url, "list", "--limit", limit)
    assert result.returncode == 2
    assert "Invalid value for '--limit'" in result.stderr
    assert "m1" not in result.stdout


def test_list_limit_shows_the_oldest(redis: Redis, redis_url: str) -> None:
    first = add_entry(redis, "m1")
    add_entry(redis, "m2")
    result = run_dlq(redis_url, "list", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(first)
    assert len(result.stdout.splitlines()) == 1
    assert "1 entry (of 2)" in result.stderr


def test_list_says_when_in_the_one_iso8601_form(redis: Redis, redis_url: str) -> None:
    call = {"type": "track", "messageId": "m1"}
    entry = dataclasses.replace(calls_entry([call], "rejected: 400"), at=1700000000.25)
    DeadLetters(redis).add(entry)
    result = run_dlq(redis_url, "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["at"] == "2023-11-14T22:13:20.250Z"
    text = run_dlq(redis_url, "list")
    assert f"{entry.id}  2023-11-14T22:13:20.250Z  calls" in text.stdout


def test_replay_of_an_unknown_id_fails(redis: Redis, redis_url: str) -> None:
    known = add_entry(redis, "m1")
    result = run_dlq(redis_url, "replay", "no-such-id")
    assert result.returncode == 1
    assert "error: no dead-letter entry no-such-id" in result.stderr
    # A known id given with it is still replayed; the exit code reports the other.
    both = run_dlq(redis_url, "replay", known, "no-such-id")
    assert both.returncode == 1
    assert f"{known}: replayed" in both.stdout
    assert "no dead-letter entry no-such-id" in both.stderr
    assert len(DeadLetters(redis)) == 0


def test_drop_of_an_unknown_id_fails(redis: Redis, redis_url: str) -> None:
    result = run_dlq(redis_url, "drop", "--yes", "no-such-id")
    assert result.returncode == 1
    assert "error: no dead-letter entry no-such-id" in result.stderr


def test_show_prints_amounts_exactly(redis: Redis, redis_url: str) -> None:
    entry = add_entry(redis, "m1", Decimal("123456789012345678.91"))
    result = run_dlq(redis_url, "show", entry)
    assert result.returncode == 0, result.stderr
    assert '"total": 123456789012345678.91' in result.stdout
    assert run_dlq(redis_url, "show", "no-such-id").returncode == 1


@pytest.mark.parametrize(
    "args",
    [("list",), ("list", "--json"), ("show", "x"), ("replay", "x"), ("drop", "--yes", "x")],
)
def test_unreachable_redis_is_one_line_not_a_traceback(args: tuple[str, ...]) -> None:
    result = run_dlq("redis://:hunter2@127.0.0.1:1/0", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot use Redis at redis://:***@127.0.0.1:1/0 (REDIS_URL)")
    assert "hunter2" not in result.stderr + result.stdout
