"""A third-party provider, installed as a distribution with a ``bridge.providers`` entry
point, works in every command exactly like a built-in: check, test, schema, sources,
preview, send, and intake under gunicorn (which also proves the signed URL reaches
``verify()``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from redis import Redis

from tests.processes import BIN, ROOT, gunicorn
from tests.providers.acme_plugin import AcmeProvider

PLUGIN = Path(__file__).with_name("acme_plugin.py")

MAPPING = """\
provider: acme
secrets: ${ACME_SECRET}
identity:
  user_id: order.user
rules:
  - name: order-paid
    on: order.paid
    emit:
      - type: track
        event: Order Completed
        properties:
          order_id: order.id
"""

CASES = """\
cases:
  - name: a paid order is Order Completed
    event: {kind: order.paid, order: {id: o_9, user: u_9}}
    expect:
      - event: Order Completed
        userId: u_9
        properties: {order_id: o_9}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder on PYTHONPATH holding the plugin and its installed metadata (dist-info)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PLUGIN, site / "acme_bridge.py")
    info = site / "acme_bridge-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-bridge\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[bridge.providers]\nacme = acme_bridge:AcmeProvider\n")
    return site


@pytest.fixture
def env(site: Path, tmp_path: Path, redis_url: str) -> dict[str, str]:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "acme.yaml").write_text(MAPPING)
    (mappings / "acme.tests.yaml").write_text(CASES)
    return {
        "PYTHONPATH": str(site),
        "BRIDGE_MAPPINGS_DIR": str(mappings),
        "ACME_SECRET": "acme-secret",
        "REDIS_URL": redis_url,
        "BRIDGE_LOG_LEVEL": "warning",
    }


def bridge(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_test_schema_and_sources(env: dict[str, str]) -> None:
    check = bridge(env, "mappings", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    test = bridge(env, "mappings", "test", "-v")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "acme.tests.yaml:2: a paid order is Order Completed" in test.stdout
    schema = json.loads(bridge(env, "mappings", "schema").stdout)
    assert "acme" in schema["properties"]["provider"]["enum"]
    assert "stripe" in schema["properties"]["provider"]["enum"]
    # The shipped sources are there too (off: their secrets are unset).
    sources = json.loads(bridge(env, "sources", "--json").stdout)
    assert [s["source"] for s in sources if s["on"]] == ["acme"]
    assert [s for s in sources if s["source"] == "acme"] == [
        {
            "source": "acme",
            "provider": "acme",
            "dedup_on": "X-Acme-Id header",
            "on": True,
            "reason": "ACME_SECRET set",
            "secrets": ["ACME_SECRET"],
            "rules": 1,
            "event_types": ["order.paid"],
            "file": env["BRIDGE_MAPPINGS_DIR"] + "/acme.yaml",
            "extends": None,
        }
    ]


def test_without_the_plugin_the_provider_is_unknown(env: dict[str, str]) -> None:
    check = bridge({**env, "PYTHONPATH": ""}, "mappings", "check")
    assert check.returncode == 1
    assert "provider: unknown provider 'acme'" in check.stdout


def test_preview(env: dict[str, str], tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"kind": "order.paid", "order": {"id": "o_1", "user": "u_1"}}')
    result = bridge(env, "preview", "--json", "acme", str(payload))
    assert result.returncode == 0, result.stderr
    [call] = json.loads(result.stdout)
    assert (call["event"], call["userId"], call["properties"]) == (
        "Order Completed",
        "u_1",
        {"order_id": "o_1"},
    )


@pytest.mark.e2e
def test_send_to_a_real_web_process(env: dict[str, str], tmp_path: Path, redis: Redis) -> None:
    payload = tmp_path / "payload.json"
    body = b'{"kind": "order.paid", "order": {"id": "o_1", "user": "u_1"}}'
    payload.write_bytes(body)
    # The same provider behind a proxy: it signs the public URL, not the one bridge sees.
    public = "https://hooks.example.com/webhooks/acme-proxied"
    proxied = MAPPING.replace("identity:", f"options:\n  public_url: {public}\nidentity:")
    (Path(env["BRIDGE_MAPPINGS_DIR"]) / "acme-proxied.yaml").write_text(proxied)
    acme = AcmeProvider()
    with gunicorn(env, workers=1) as url:
        for source in ("acme", "acme-proxied"):
            sent = bridge(env, "send", source, str(payload), "--url", url)
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert '"status":"accepted"' in sent.stdout
        # Signed over the URL bridge sees: right for acme, wrong for acme-proxied.
        for source, status in (("acme", 200), ("acme-proxied", 400)):
            target = f"{url}/webhooks/{source}"
            headers = acme.sign(body, "acme-secret", now=0, url=target)
            assert httpx.post(target, content=body, headers=headers).status_code == status
        # Signed over the public URL: right for acme-proxied only.
        target = f"{url}/webhooks/acme-proxied"
        headers = acme.sign(body, "acme-secret", now=0, url=public)
        assert httpx.post(target, content=body, headers=headers).status_code == 200
