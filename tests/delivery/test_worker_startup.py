"""A worker with bad configuration refuses to start, saying why (not at its first job)."""

from __future__ import annotations

import os
import subprocess

from bridge.devtools import processes
from tests.intake.conftest import base_env
from tests.processes import BIN, ROOT


def start_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = processes.worker_command(env["REDIS_URL"])
    return subprocess.run(
        [str(BIN / command[0]), *command[1:-1], "--burst", command[-1]],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_setting_stops_the_worker_with_its_name(redis_url: str) -> None:
    result = start_worker({**base_env(redis_url), "BRIDGE_DRAIN_CHUNK": "0"})
    assert result.returncode == 2
    assert "BRIDGE_DRAIN_CHUNK" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_mapping_stops_the_worker_with_file_and_line(redis_url: str) -> None:
    env = {**base_env(redis_url), "STRIPE_WEBHOOK_SECRET": "", "BRIDGE_SOURCES": "stripe"}
    result = start_worker(env)
    assert result.returncode == 2
    assert "stripe.yaml:" in result.stderr
    assert "STRIPE_WEBHOOK_SECRET is not set" in result.stderr


def test_good_configuration_starts_and_drains(redis_url: str) -> None:
    result = start_worker(base_env(redis_url))
    assert result.returncode == 0, result.stderr
