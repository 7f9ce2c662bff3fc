"""Start-up: invalid configuration stops the web process with one line per problem."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from flask import Flask

from bridge.errors import ConfigError
from tests.intake.conftest import base_env
from tests.processes import BIN, ROOT


def test_gunicorn_refuses_to_start_and_names_each_problem(redis_url: str) -> None:
    env = {**base_env(redis_url), "BRIDGE_FLUSH_AT": "lots", "STRIPE_WEBHOOK_SECRET": ""}
    env.pop("CLERK_WEBHOOK_SECRET")
    result = subprocess.run(
        [
            str(BIN / "gunicorn"),
            "-b",
            "127.0.0.1:0",
            "--no-control-socket",
            "bridge.intake:create_app()",
        ],
        env={k: v for k, v in {**os.environ, **env}.items() if k != "CLERK_WEBHOOK_SECRET"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "BRIDGE_FLUSH_AT: Input should be a valid integer" in result.stderr
    assert "App failed to load" in result.stderr  # the master stops; no restart loop
    assert "Traceback" not in result.stderr


def test_mapping_problems_are_listed_with_file_line_and_column(
    make_app: Callable[..., Flask],
) -> None:
    # Unset secrets stop the boot only for sources BRIDGE_SOURCES pins (else: off).
    with pytest.raises(ConfigError) as info:
        make_app(STRIPE_WEBHOOK_SECRET="", CLERK_WEBHOOK_SECRET="", BRIDGE_SOURCES="stripe,clerk")
    text = str(info.value)
    assert "stripe.yaml:" in text
    assert "STRIPE_WEBHOOK_SECRET is not set" in text
    assert "CLERK_WEBHOOK_SECRET is not set" in text


def test_app_starts_without_redis_and_reports_not_ready(make_app: Callable[..., Flask]) -> None:
    from bridge.devtools.redis_server import free_port

    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", BRIDGE_REDIS_TIMEOUT="0.3")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
