"""The README's recipes with only STRIPE_WEBHOOK_SECRET (and the collector settings) set.

From the repository, as a fresh clone runs it: the Procfile under honcho (``release:``,
``web:`` and ``worker:``) and the image's commands outside Docker. Stripe webhooks are
delivered to a local collector; every other shipped source reports itself off.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from redis import Redis

from bridge.devtools.collector import Collector
from bridge.devtools.redis_server import free_port
from tests.processes import BIN, ROOT, stop, wait_until
from tests.revenue_secrets import REVENUE_SOURCES
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers
from tests.test_dockerfile import image_cmd
from tests.test_procfile import PROCFILE, procfile

OTHER_SOURCES = {"clerk", "github", "site", *REVENUE_SOURCES}


def clean_environ() -> dict[str, str]:
    """The test runner's environment without any bridge or provider setting."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "SEGMENT_", "STRIPE_", "CLERK_", "GITHUB_"))
        and k not in ("REDIS_URL", "PORT")
    }


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector(write_key="wk_test") as c:
        yield c


@pytest.fixture
def only_stripe(redis_url: str, collector: Collector) -> dict[str, str]:
    """Only Stripe's secret and the collector settings (plus test-speed flush knobs)."""
    return {
        **clean_environ(),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "REDIS_URL": redis_url,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "SEGMENT_WRITE_KEY": "wk_test",
        "SEGMENT_ENDPOINT": collector.url,
        "BRIDGE_FLUSH_INTERVAL": "0.2",
        "BRIDGE_WORKER_TICK": "0.1",
    }


def _ready(url: str) -> dict[str, object] | None:
    try:
        resp = httpx.get(f"{url}/readyz", timeout=1)
    except httpx.HTTPError:
        return None
    body: dict[str, object] = resp.json()
    return body if resp.status_code == 200 else None


def _exercise(url: str, collector: Collector) -> None:
    """A signed Stripe event is delivered; the other shipped sources answer source_off."""
    ready = wait_until(lambda: _ready(url), 30, what=f"{url}/readyz")
    assert ready["sources"] == ["stripe"]
    assert set(ready["off"]) == OTHER_SOURCES  # type: ignore[call-overload]
    body = stripe_event()
    session_id = orjson.loads(body)["data"]["object"]["id"]
    with httpx.Client(timeout=10) as http:
        resp = http.post(
            f"{url}/webhooks/stripe", content=body, headers=stripe_headers(body, STRIPE_SECRET)
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "accepted"
        for source in sorted(OTHER_SOURCES):
            off = http.post(f"{url}/webhooks/{source}", content=b"{}")
            assert off.status_code == 404
            assert off.json()["reason"] == "source_off"
    # An Order Completed is counted once per payment and named by it:
    # <source>:<the session (no invoice, no payment intent)>:<index>.
    expected = {f"stripe:{session_id}:0"}
    assert collector.wait_for_ids(expected, timeout=60), collector.message_ids()


def test_release_passes_and_reports_the_other_sources_off(only_stripe: dict[str, str]) -> None:
    result = subprocess.run(
        ["sh", "-c", procfile()["release"]],
        env=only_stripe,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for source in OTHER_SOURCES:
        assert f"info: source {source!r} is off: " in result.stdout
    assert "info: source 'stripe'" not in result.stdout


@pytest.mark.e2e
def test_procfile_under_honcho_with_only_the_stripe_secret(
    only_stripe: dict[str, str], collector: Collector, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "honcho.log"
    # release: runs once per deploy (honcho would stop everything when it exits): it has
    # its own test above.
    command = [str(BIN / "honcho"), "-f", str(PROCFILE), "-d", str(ROOT), "start"]
    honcho = subprocess.Popen(
        [*command, "-p", str(port), "web", "worker"],
        env=only_stripe,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        _exercise(f"http://127.0.0.1:{port}", collector)
    finally:
        stop(honcho, signal.SIGTERM, timeout=30)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.e2e
def test_image_commands_with_only_the_stripe_secret(
    redis: Redis, only_stripe: dict[str, str], collector: Collector, tmp_path: Path
) -> None:
    port = free_port()
    # What the image's ENV sets; in a folder without ./mappings, as the image's /app is
    # (the shipped catalogue is read from the package: here the checkout's mappings/).
    env = {**only_stripe, "PORT": str(port), "WEB_CONCURRENCY": "2"}
    worker_cmd = procfile()["worker"].replace("$REDIS_URL", env["REDIS_URL"]).split()
    log = (tmp_path / "processes.log").open("ab")
    web = subprocess.Popen(image_cmd(), env=env, cwd=tmp_path, stdout=log, stderr=log)
    worker = subprocess.Popen(worker_cmd, env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        _exercise(f"http://127.0.0.1:{port}", collector)
    finally:
        stop(worker, signal.SIGTERM, timeout=30)
        assert stop(web, signal.SIGTERM, timeout=30) == 0
