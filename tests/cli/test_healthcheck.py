"""``bridge healthcheck``: the container probe."""

from __future__ import annotations

import os
import subprocess

from redis import Redis

from bridge.devtools.redis_server import free_port
from tests.intake.conftest import base_env
from tests.processes import BIN, gunicorn


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), "healthcheck", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_web_probe_passes_when_gunicorn_answers(redis: Redis, redis_url: str) -> None:
    env = base_env(redis_url)
    with gunicorn(env, workers=1) as url:
        result = probe({**env, "PORT": url.rsplit(":", 1)[1]})
    assert (result.returncode, result.stdout.strip()) == (0, "healthy: web")


def test_web_probe_fails_when_nothing_listens(redis_url: str) -> None:
    result = probe({**base_env(redis_url), "PORT": str(free_port())})
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy:")


def test_worker_probe_fails_without_a_worker(redis: Redis, redis_url: str) -> None:
    result = probe(base_env(redis_url), "--worker")
    assert result.returncode == 1
    assert "no rq worker registered" in result.stderr


def test_worker_probe_passes_while_a_worker_runs(redis: Redis, redis_url: str) -> None:
    from bridge.devtools import processes
    from tests.processes import stop, wait_until

    env = base_env(redis_url)
    command = processes.worker_command(redis_url, quiet=True)
    worker = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = wait_until(
            lambda: (r := probe(env, "--worker")).returncode == 0 and r,
            30,
            interval=0.5,
            what="the worker to register",
        )
        assert result.stdout.startswith("healthy: 1 worker(s)")
    finally:
        stop(worker)
    assert probe(env, "--worker").returncode == 1  # gone after SIGTERM
