"""``bridge healthcheck --worker`` says unhealthy when drain jobs keep failing, even
though the worker process is alive and sends its heartbeats."""

from __future__ import annotations

import os
import subprocess

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bridge.delivery import jobs
from bridge.delivery.runtime import Runtime
from bridge.devtools import processes
from tests.delivery import support
from tests.delivery.conftest import make_runtime, runtime  # noqa: F401 (fixtures)
from tests.delivery.support import push_unkicked
from tests.processes import BIN, stop, wait_until

pytestmark = pytest.mark.e2e


def probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), "healthcheck", "--worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_worker_whose_drain_jobs_keep_failing_is_unhealthy(
    runtime: Runtime,  # noqa: F811
    redis: Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = support.env(redis_url, runtime.settings.segment_endpoint)
    command = processes.worker_command(redis_url, quiet=True)
    # A live worker on a queue nobody fills: its heartbeat is fresh throughout.
    worker = subprocess.Popen(
        [str(BIN / command[0]), *command[1:-1], "elsewhere"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: probe(env).returncode == 0, 30, interval=0.5, what="a healthy worker")
        push_unkicked(redis, range(3))

        def complete_fails(*args: object) -> bool:
            raise RedisConnectionError("Connection reset by peer")

        monkeypatch.setattr(runtime.inbox, "complete", complete_fails)
        for _ in range(2):
            with pytest.raises(RedisConnectionError):
                jobs.drain(runtime)
        assert probe(env).returncode == 0  # two failures: a blip the backoff rides out
        with pytest.raises(RedisConnectionError):
            jobs.drain(runtime)
        result = probe(env)
        assert result.returncode == 1
        assert "drain jobs failed 3 times in a row" in result.stderr
        assert "Connection reset by peer" in result.stderr
        monkeypatch.undo()
        redis.delete("bridge:inbox:kick")
        jobs.drain(runtime)
        assert probe(env).returncode == 0
    finally:
        stop(worker)
