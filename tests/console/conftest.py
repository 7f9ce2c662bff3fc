"""Fixtures for the console: the real web app with BRIDGE_CONSOLE_TOKEN set, logged in or not."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Page, sync_playwright

from bridge.intake import create_app
from bridge.settings import Settings
from tests.intake.conftest import LogLines, base_env
from tests.processes import ROOT

TOKEN = "console-test-token-4f1c"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "console"
#: The shop mapping's secret (tests/delivery/mappings/shop.yaml).
SHOP_SECRET = "whsec_delivery_tests_only"
#: Playwright's waits, in ms: generous for a shared 2-core machine; never a timing claim.
WAIT = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium")
    with sync_playwright() as p:
        # --no-sandbox: CI containers run as root, where chromium's sandbox cannot start.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


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


def map_inbox(app: Flask) -> dict[str, object]:
    """Run one drain job over the inbox in this process, as an ``rq worker`` would: the
    events are mapped and the worker's record (calls, payload) is written. Nothing is
    sent: no batch is full, and no collector is configured."""
    from bridge.delivery import jobs
    from bridge.delivery.runtime import Runtime

    runtime = Runtime(app.extensions["bridge"].settings)
    try:
        return jobs.drain(runtime, budget=5.0)
    finally:
        runtime.close()
