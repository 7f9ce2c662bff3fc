"""Fixtures for the console: the real web app with BRIDGE_CONSOLE_TOKEN set, logged in or not."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.intake import create_app
from bridge.settings import Settings
from tests.intake.conftest import LogLines, base_env

TOKEN = "console-test-token-4f1c"


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def make_console_app(redis_url: str) -> Callable[..., Flask]:
    def build(**overrides: str) -> Flask:
        env = {**base_env(redis_url), "BRIDGE_CONSOLE_TOKEN": TOKEN, **overrides}
        app = create_app(Settings.from_env(env), log_stream=LogLines())
        app.testing = True
        return app

    return build


@pytest.fixture
def console_app(make_console_app: Callable[..., Flask]) -> Flask:
    return make_console_app()


@pytest.fixture
def anon(console_app: Flask) -> Iterator[FlaskClient]:
    with console_app.test_client() as c:
        yield c


def login(client: FlaskClient, token: str = TOKEN) -> FlaskClient:
    page = client.get("/console/login")
    answer = client.post("/console/login", data={"token": token, "csrf": csrf_of(page.text)})
    assert answer.status_code == 302, answer.text
    return client


@pytest.fixture
def operator(console_app: Flask) -> Iterator[FlaskClient]:
    with console_app.test_client() as c:
        yield login(c)


def flush(app: Flask) -> None:
    """Write the recorder's buffer now (the background thread would within 0.25 s)."""
    app.extensions["bridge.console"].recorder.flush()
