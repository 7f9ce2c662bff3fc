"""``@segment/analytics-next`` as npm ships it, in Debian's headless chromium, loaded by a
page on another origin with bridge as its host: a page view and a track reach the
collector with the anonymousId of the browser's ``ajs_anonymous_id`` cookie."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from playwright.sync_api import sync_playwright

from bridge.devtools.collector import Collector
from tests.collect.browser import chromium_path, static_server
from tests.collect.js import JS, ensure_installed
from tests.conftest import ROOT
from tests.delivery import support
from tests.delivery.support import Worker
from tests.processes import gunicorn

pytestmark = pytest.mark.e2e

KEY = "wk_browser_test"


def open_page(url: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Load ``url`` in headless chromium; the page's result, its cookies, console errors."""
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            result = page.evaluate("window.result")
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        finally:
            browser.close()
    return result, cookies, errors


def cookie_id(value: str) -> str:
    """analytics.js writes the id URL-encoded, JSON-quoted by older versions."""
    text = unquote(value)
    return str(json.loads(text)) if text.startswith('"') else text


def test_analytics_next_in_chromium_sends_page_and_track_through_bridge(
    redis_url: str,
    collector: Collector,
    workers: Callable[[dict[str, str]], Worker],
) -> None:
    ensure_installed()
    with static_server(JS) as site:
        environ = support.env(
            redis_url,
            collector.url,
            ROOT / "mappings",
            BRIDGE_WRITE_KEYS=KEY,
            BRIDGE_ALLOWED_ORIGINS=site,
        )
        workers(environ)
        with gunicorn(environ, workers=1) as bridge:
            result, cookies, errors = open_page(f"{site}/page.html?key={KEY}&bridge={bridge}")
    assert "error" not in result, (result, errors)
    assert result["failed"] == 0, errors
    sent = {result["page"], result["track"]}
    assert collector.wait_for_ids(sent, timeout=30), errors
    received = {c["messageId"]: c for c in collector.calls}
    assert set(received) == sent
    page, track = received[result["page"]], received[result["track"]]
    anonymous_id = cookie_id(cookies["ajs_anonymous_id"])
    assert anonymous_id == result["anonymousId"]
    assert page["anonymousId"] == anonymous_id
    assert track["anonymousId"] == anonymous_id
    assert (page["type"], page["name"]) == ("page", "Home")
    assert page["properties"]["section"] == "landing"
    assert page["properties"]["path"] == "/page.html"
    assert page["context"]["page"]["title"] == "bridge test shop"
    assert (track["type"], track["event"]) == ("track", "Clicked Buy")
    assert track["properties"] == {"sku": "A1", "price": 12.5}
    assert track["context"]["library"]["name"] == "analytics.js"
    assert "writeKey" not in track
