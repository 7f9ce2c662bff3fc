"""The settings spec renders the configuration table (``bridge settings table``)."""

from __future__ import annotations

import subprocess

from bridge.settings import Settings, settings_spec, settings_table
from tests.processes import BIN


def test_table_rows_show_variable_meaning_and_default() -> None:
    lines = settings_table().splitlines()
    assert lines[:2] == ["| variable | meaning | default |", "| --- | --- | --- |"]
    assert (
        "| `REDIS_URL` | the Redis that holds the inbox, dedup keys, outbox, dead letters and"
        " RQ queues | `redis://localhost:6379/0` |"
    ) in lines
    # A bool is written as the environment spells it; a whole float without ".0".
    assert "| `BRIDGE_GZIP` | gzip batch bodies | `true` |" in lines
    assert "| `BRIDGE_RETRY_MAX` | backoff cap, seconds | `300` |" in lines
    # A default the value cannot say is written as the field states it.
    assert (
        "| `BRIDGE_DEDUP_TTL` | seconds a provider event id is remembered (at least 4 days:"
        " Stripe retries for 3) | `604800` (7 days) |"
    ) in lines
    assert len(lines) == 2 + len(Settings.model_fields) - 1  # every field but ``environ``


def test_every_setting_is_described() -> None:
    assert all(s.meaning and s.default for s in settings_spec())


def test_the_hidden_command_prints_the_table() -> None:
    result = subprocess.run(
        [str(BIN / "bridge"), "settings", "table"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == settings_table()
    listed = subprocess.run(
        [str(BIN / "bridge"), "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    assert "settings" not in listed.stdout
