"""The real Procfile, run by a real Procfile runner (honcho): webhooks in, calls out,
SIGTERM in the middle, nothing lost."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from redis import Redis

from bridge.catalogue import Catalogue
from bridge.devtools import processes
from bridge.devtools.collector import Collector
from bridge.devtools.redis_server import free_port
from bridge.envelope import Envelope
from bridge.mappings import MemoryIdentityStore
from tests.intake.conftest import base_env
from tests.processes import BIN, ROOT, stop, wait_until
from tests.revenue_secrets import REVENUE_ENV
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers

PROCFILE = ROOT / "Procfile"


def procfile() -> dict[str, str]:
    lines = [line.split(":", 1) for line in PROCFILE.read_text().splitlines() if line.strip()]
    return {name.strip(): command.strip() for name, command in lines}


def test_procfile_runs_what_bridge_dev_runs() -> None:
    entries = procfile()
    assert set(entries) == {"web", "worker", "release"}
    web = shlex.split(entries["web"])
    assert web[0] == "gunicorn"
    assert "0.0.0.0:$PORT" in web
    assert processes.WSGI_APP in web
    # The same gunicorn settings as the image and bridge dev (tested live in
    # tests/faults/test_intake_gunicorn.py).
    assert web[web.index("--config") + 1] == processes.GUNICORN_CONF
    assert processes.web_command("0.0.0.0:$PORT") == web
    assert shlex.split(entries["worker"]) == processes.worker_command("$REDIS_URL")
    assert entries["release"] == "bridge mappings check"


def _release(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", procfile()["release"]],
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_release_passes_with_the_secrets_set(redis_url: str) -> None:
    result = _release(base_env(redis_url))
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_refuses_a_deploy_with_an_unset_secret(redis_url: str) -> None:
    env = base_env(redis_url)
    env["STRIPE_WEBHOOK_SECRET"] = ""
    env["BRIDGE_SOURCES"] = "stripe"  # pinned: without it, stripe would only be off
    result = _release(env)
    assert result.returncode == 1
    assert "STRIPE_WEBHOOK_SECRET is not set" in result.stdout + result.stderr


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector(write_key="wk_test") as c:
        yield c


def _honcho(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(BIN / "honcho"),
            "-f",
            str(PROCFILE),
            "-d",
            str(ROOT),
            "start",
            "-p",
            str(port),
            "web",
            "worker",
        ],
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.e2e
def test_procfile_delivers_every_call_across_a_sigterm(
    redis: Redis, redis_url: str, collector: Collector, tmp_path: Path
) -> None:
    env = {
        **base_env(redis_url),
        "SEGMENT_ENDPOINT": collector.url,
        "SEGMENT_WRITE_KEY": "wk_test",
        "BRIDGE_FLUSH_INTERVAL": "0.2",
        "BRIDGE_WORKER_TICK": "0.1",
        "BRIDGE_LOG_LEVEL": "warning",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bodies = [stripe_event() for _ in range(60)]
    # Every shipped mapping compiles with its variables set (site's and the revenue
    # providers' included).
    shipped = Catalogue.load(ROOT / "mappings", {**env, "BRIDGE_WRITE_KEYS": "wk", **REVENUE_ENV})
    stripe_mapping = shipped.mappings()["stripe"]
    expected = set()
    for body in bodies:
        event = orjson.loads(body)
        envelope = Envelope("stripe", event["id"], event["type"], event["created"], 0.0, event)
        calls = stripe_mapping.evaluate(envelope, MemoryIdentityStore())
        assert [c["event"] for c in calls] == ["Order Completed"]
        expected |= {c["messageId"] for c in calls}

    log = tmp_path / "honcho.log"
    honcho = _honcho(env, port, log)
    try:
        wait_until(lambda: _ready(url), 30, what="the Procfile's web process")
        with httpx.Client(timeout=10) as http:
            for body in bodies[:30]:
                resp = http.post(
                    f"{url}/webhooks/stripe",
                    content=body,
                    headers=stripe_headers(body, STRIPE_SECRET),
                )
                assert resp.json()["status"] == "accepted"
        # SIGTERM while the worker is mapping and sending: a deploy or a dyno restart.
        stop(honcho, signal.SIGTERM, timeout=30)
        honcho = _honcho(env, port, log)
        wait_until(lambda: _ready(url), 30, what="the web process after the restart")
        with httpx.Client(timeout=10) as http:
            for body in bodies[30:]:
                resp = http.post(
                    f"{url}/webhooks/stripe",
                    content=body,
                    headers=stripe_headers(body, STRIPE_SECRET),
                )
                assert resp.json()["status"] == "accepted"
        delivered = wait_until_delivered(collector, expected, timeout=60)
    finally:
        stop(honcho, signal.SIGTERM, timeout=30)
    assert delivered == expected, log.read_text()[-3000:]
    assert all(c["context"]["library"]["name"] == "bridge" for c in collector.calls)


def wait_until_delivered(collector: Collector, expected: set[str], timeout: float) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not expected <= set(collector.message_ids()):
        time.sleep(0.1)
    return set(collector.message_ids())


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
