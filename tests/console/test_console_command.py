"""``bridge console``: the console alone on a port of its own, as an operator starts it."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from bridge.devtools.redis_server import free_port
from tests.console.conftest import TOKEN
from tests.intake.conftest import base_env
from tests.processes import BIN, ROOT, stop, wait_until

pytestmark = pytest.mark.e2e


def test_bridge_console_serves_the_console_alone(redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, **base_env(redis_url), "BRIDGE_CONSOLE_TOKEN": TOKEN}
    env["BRIDGE_CONSOLE_PORT"] = str(port)
    proc = subprocess.Popen(
        [str(BIN / "bridge"), "console", "--host", "127.0.0.1"], env=env, cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"bridge console exited with {proc.returncode}")
        try:
            return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 30, what="bridge console to answer")
        login = httpx.get(f"{url}/console/")
        assert login.status_code == 302
        assert login.headers["Location"].startswith("/console/login")
        # Only the console: no webhook endpoint on this port.
        assert httpx.post(f"{url}/webhooks/stripe", content=b"{}").status_code == 404
    finally:
        stop(proc)


def test_bridge_console_refuses_to_start_without_a_token(redis_url: str) -> None:
    env = {**os.environ, **base_env(redis_url), "BRIDGE_CONSOLE_PORT": str(free_port())}
    env.pop("BRIDGE_CONSOLE_TOKEN", None)
    done = subprocess.run(
        [str(BIN / "bridge"), "console"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "BRIDGE_CONSOLE_TOKEN is not set" in done.stderr
