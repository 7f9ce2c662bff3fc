"""The console in a real headless browser: Debian's chromium driven by Playwright.

Real gunicorn, a real rq worker, the local collector and the session's redis-server.
Screenshots of every page land in test-artifacts/console/ (look at them).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect
from redis import Redis

from bridge.delivery.deadletter import DeadLetters
from bridge.devtools.collector import Collector
from tests.console.conftest import ARTIFACTS, SHOP_SECRET, TOKEN, WAIT, shot
from tests.delivery import support
from tests.processes import gunicorn, wait_until
from tests.signing import STRIPE_SECRET, stripe_headers

pytestmark = pytest.mark.e2e


def post(url: str, body: bytes, secret: str = SHOP_SECRET, source: str = "shop") -> int:
    headers = stripe_headers(body, secret)
    return httpx.post(f"{url}/webhooks/{source}", content=body, headers=headers).status_code


def test_console_in_a_browser(
    browser: Browser, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    collector = Collector().start()
    env = support.env(
        redis_url,
        collector.url,
        BRIDGE_CONSOLE_TOKEN=TOKEN,
        STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        # Plain http on 127.0.0.1 here; production keeps the Secure flag.
        BRIDGE_CONSOLE_SECURE_COOKIE="false",
    )
    worker = support.Worker(env, tmp_path / "worker1.log")
    try:
        with gunicorn(env, workers=2) as url:
            run_scenarios(browser, redis, collector, url, env, worker, tmp_path)
    finally:
        worker.stop()
        collector.stop()


def run_scenarios(
    browser: Browser,
    redis: Redis,
    collector: Collector,
    url: str,
    env: dict[str, str],
    worker: support.Worker,
    tmp_path: Path,
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # 1. Unauthenticated access is redirected to the login page.
    page.goto(f"{url}/console/events")
    expect(page).to_have_url(f"{url}/console/login?next=/console/events")
    shot(page, "1-login")

    # 2. Log in with the token; back where we were going.
    page.get_by_label("Console token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/console/events")
    cookie = next(c for c in context.cookies() if c["name"] == "bridge_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"

    # 3. A signed webhook appears in the log without a reload.
    page.evaluate("window.__sameDocument = true")
    good = support.order_body(1)
    assert post(url, good) == 200
    row = page.locator("#log tbody tr", has_text="evt_1")
    expect(row).to_be_visible(timeout=WAIT)
    expect(row).to_contain_text("accepted")
    assert page.evaluate("window.__sameDocument") is True  # live, not reloaded
    shot(page, "2-event-log")

    # 4. Its detail shows the mapped call and, after the flush, "sent".
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text("Webhook evt_1")
    state = page.locator("td.state", has_text="sent in batch")
    expect(state).to_be_visible(timeout=WAIT)
    expect(page.locator("#calls")).to_contain_text(support.message_id(1))
    expect(page.locator("text=Stripe-Signature")).to_be_visible()
    expect(page.locator("#main")).to_contain_text("masked")
    assert collector.wait_for_ids({support.message_id(1)}, timeout=20)
    shot(page, "3-event-detail")

    # 5. A payload with <script> renders as text and never runs.
    attack = "<script>window.__xss = 1</script><img src=x onerror='window.__xss = 2'>"
    assert post(url, support.order_body(2, padding=attack)) == 200
    page.goto(f"{url}/console/events?event_id=evt_2")
    page.locator("#log tbody tr", has_text="evt_2").get_by_role("link").click()
    expect(page.locator("#payload")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator("td.state", has_text="sent in batch")).to_be_visible(timeout=WAIT)
    page.locator("details summary").first.click()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#main script").count() == 0
    assert page.locator("#main img").count() == 0
    shot(page, "4-script-as-text")

    # 6. A poison event becomes a dead letter, with its reason.
    poison = support.order_body(3, user=None)  # no user id: a mapping error
    assert post(url, poison) == 200
    wait_until(lambda: len(DeadLetters(redis)) == 1, 20, what="the dead letter")
    page.goto(f"{url}/console/dead-letters")
    expect(page.locator("table")).to_contain_text("mapping_error")
    expect(page.locator("table")).to_contain_text("evt_3")
    shot(page, "5-dead-letters")

    # 7. A forged action without the CSRF token is refused; the entry stays.
    entry_id = DeadLetters(redis).ids()[0]
    status = page.evaluate(
        """async (id) => {
            const form = new URLSearchParams({action: "drop", id: id, confirm: "yes"});
            const r = await fetch("/console/dead-letters/action", {method: "POST", body: form});
            return r.status;
        }""",
        entry_id,
    )
    assert status == 403
    assert DeadLetters(redis).get(entry_id) is not None

    # 8. Fix the mapping (a worker with the fixed file), replay from the page.
    worker.terminate()
    fixed = support.Worker(
        {**env, "BRIDGE_MAPPINGS_DIR": str(support.MAPPINGS_FIXED)}, tmp_path / "worker2.log"
    )
    try:
        page.get_by_label(f"Select dead letter {entry_id}").check()
        page.get_by_role("button", name="Replay selected").click()
        expect(page.locator("h1")).to_contain_text("Replay 1 dead letter(s)?")
        shot(page, "6-confirm-replay")
        page.get_by_role("button", name="Yes, replay").click()
        expect(page.locator("[role=status]")).to_contain_text("1 dead letter(s) replayed")
        poison_id = support.message_id(3)
        assert collector.wait_for_ids({poison_id}, timeout=20)
        # ... exactly once: a later event arriving proves the replay is not still in flight.
        assert post(url, support.order_body(4)) == 200
        assert collector.wait_for_ids({support.message_id(4)}, timeout=20)
        assert collector.message_ids().count(poison_id) == 1
        assert len(DeadLetters(redis)) == 0
        # The replay is in the log, and the event's detail now says "sent".
        page.goto(f"{url}/console/events")
        expect(page.locator("#log")).to_contain_text("replayed")
        page.goto(f"{url}/console/events?event_id=evt_3")
        page.locator("#log tbody tr", has_text="evt_3").first.get_by_role("link").click()
        expect(page.locator("td.state", has_text="sent in batch")).to_be_visible(timeout=WAIT)
    finally:
        fixed.stop()

    # 9. The overview and the playground.
    page.goto(f"{url}/console/")
    # Exactly "shop" (the shipped "shopify" source is listed too).
    shop = page.locator("tr", has=page.locator("th", has_text=re.compile(r"^\s*shop\s*$")))
    expect(shop).to_contain_text("4 / 4")  # accepted this hour / this day
    expect(page.locator("svg.chart")).to_be_visible()
    shot(page, "7-overview")
    # Keyboard: the first Tab reaches the skip link, which moves focus past the header.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Overview"
    page.goto(f"{url}/console/playground")
    page.get_by_label("Source").select_option("shop")
    page.get_by_label("Payload (JSON)").fill(support.order_body(9).decode())
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("pre.call")).to_contain_text('"event": "Order Completed"')
    shot(page, "8-playground")
    assert support.message_id(9) not in collector.message_ids()
    context.close()
    saved = {p.name for p in ARTIFACTS.glob("*.png")}
    assert {"3-event-detail.png", "7-overview.png"} <= saved
