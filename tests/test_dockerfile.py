"""The Dockerfile, checked without a Docker engine: hadolint runs in ./scripts/test, and
here its CMD and HEALTHCHECK are run as the image would run them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import httpx
from redis import Redis

from bridge.devtools import processes
from bridge.devtools.redis_server import free_port
from tests.intake.conftest import base_env
from tests.processes import BIN, ROOT, stop, wait_until

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def image_cmd() -> list[str]:
    """The image's CMD, which must be in exec form (a JSON list)."""
    found = re.findall(r"^CMD (\[.*\])\s*$", DOCKERFILE, flags=re.M)
    assert found, "no exec-form CMD"
    command: list[str] = json.loads(found[-1])
    return command


def healthcheck_cmd() -> list[str]:
    """The HEALTHCHECK's command (its options may span continued lines)."""
    found = re.search(r"^HEALTHCHECK\b.*?\bCMD (\[.*?\])", DOCKERFILE, flags=re.M | re.S)
    assert found, "no exec-form HEALTHCHECK"
    command: list[str] = json.loads(found.group(1))
    return command


def test_image_shape() -> None:
    assert re.search(r"^FROM python:3\.\d+-slim\b", DOCKERFILE, flags=re.M)
    user = re.findall(r"^USER (\S+)", DOCKERFILE, flags=re.M)
    assert user, "no USER: the image would run as root"
    assert user[-1].isdigit(), "a numeric uid resolves on any host"
    assert user[-1] != "0"
    # Dependencies are installed before the source is copied: their own layer.
    assert DOCKERFILE.index("pip install --requirement") < DOCKERFILE.index("COPY bridge")
    assert "HEALTHCHECK" in DOCKERFILE


def test_cmd_uses_the_same_gunicorn_settings_as_the_procfile() -> None:
    cmd = image_cmd()
    assert cmd[0] == "gunicorn"
    assert cmd[cmd.index("--config") + 1] == processes.GUNICORN_CONF
    assert cmd[-1] == processes.WSGI_APP


def test_cmd_serves_on_port_answers_healthcheck_and_stops_on_sigterm(
    redis: Redis, redis_url: str
) -> None:
    cmd = image_cmd()
    health = healthcheck_cmd()
    port = free_port()
    env = {**os.environ, **base_env(redis_url), "PORT": str(port), "WEB_CONCURRENCY": "2"}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    web = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        wait_until(
            lambda: _get(f"http://127.0.0.1:{port}/readyz") == 200, 30, what="the image's CMD"
        )
        probe = subprocess.run(health, env=env, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stderr
    finally:
        code = stop(web, signal.SIGTERM, timeout=30)
    assert code == 0  # exec form: gunicorn itself got SIGTERM and shut down cleanly


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return 0
