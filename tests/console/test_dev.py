"""``bridge dev`` with the console: the printed link opens it logged in, and dead letters
are shown with their reason in the terminal too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from bridge.devtools.redis_server import free_port
from tests.cli.test_dev import Output
from tests.console.conftest import SHOP_SECRET, shot
from tests.delivery import support
from tests.processes import BIN, ROOT
from tests.signing import stripe_headers

pytestmark = pytest.mark.e2e


def test_dev_prints_a_logged_in_console_link_and_dead_letters(
    browser: Browser, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"SEGMENT_WRITE_KEY", "STRIPE_WEBHOOK_SECRET", "REDIS_URL", "BRIDGE_CONSOLE_TOKEN"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    # The delivery tests' shop mapping over the shipped ones: an order without a user id
    # is a mapping error (identity_fallback: error).
    env["BRIDGE_MAPPINGS_DIR"] = str(support.MAPPINGS)
    env["SHOP_WEBHOOK_SECRET"] = SHOP_SECRET
    proc = subprocess.Popen(
        [str(BIN / "bridge"), "dev", "--port", str(port), "--data-dir", str(tmp_path / "dev")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        out.wait_for("Ctrl-C stops everything", timeout=240)
        text = "\n".join(out.lines)
        link = re.search(r"console\s+(http://127\.0\.0\.1:\d+/console/login#token=\S+)", text)
        assert link, text

        # The printed link logs the local user in (the token never reaches the server's logs).
        page = browser.new_page()
        page.goto(link.group(1))
        expect(page).to_have_url(f"http://127.0.0.1:{port}/console/")
        expect(page.locator("h1")).to_have_text("Overview")
        assert "token" not in page.url

        body = support.order_body(77, user=None)
        headers = stripe_headers(body, SHOP_SECRET)
        answer = httpx.post(f"http://127.0.0.1:{port}/webhooks/shop", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        event_id = "evt_77"
        at = out.wait_for(f"(event shop/{event_id}): mapping_error", timeout=60)
        assert "no userId or anonymousId" in out.lines[at]
        link = out.lines[out.wait_for("or open it:", timeout=5)]
        assert f"127.0.0.1:{port}/console/dead-letters/" in link
        page.goto(f"http://127.0.0.1:{port}/console/dead-letters")
        expect(page.locator("table")).to_contain_text(event_id)
        shot(page, "9-dev-dead-letter")
        page.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
