"""Fixtures for the web app: the real Flask app on the real test Redis."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.intake import create_app
from bridge.settings import Settings
from tests.conftest import ROOT
from tests.signing import CLERK_SECRET, GITHUB_SECRET, STRIPE_SECRET


class LogLines(io.StringIO):
    """The app's log stream; ``records()`` parses its JSON lines."""

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.strip()]


def base_env(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "CLERK_WEBHOOK_SECRET": CLERK_SECRET,
        "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "BRIDGE_LOG_FORMAT": "json",
    }


@pytest.fixture
def logs() -> LogLines:
    return LogLines()


@pytest.fixture
def make_app(redis_url: str, logs: LogLines) -> Callable[..., Flask]:
    """Build the app from an environment: the test defaults plus ``overrides``."""

    def build(**overrides: str) -> Flask:
        settings = Settings.from_env({**base_env(redis_url), **overrides})
        app = create_app(settings, log_stream=logs)
        app.testing = True
        return app

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c
