"""The official Segment JavaScript libraries, installed from npm into tests/js/ (the
committed package-lock.json pins them) and run unmodified."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

JS = ROOT / "tests" / "js"
NODE_MODULES = JS / "node_modules"


def ensure_installed() -> Path:
    """``npm ci`` once (scripts/test runs it too); idempotent."""
    marker = NODE_MODULES / "@segment" / "analytics-node" / "package.json"
    if not marker.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed for the official Segment clients (apt-get install npm)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300)
    return NODE_MODULES


def run_node_client(host: str, write_key: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Send ``spec["calls"]`` through @segment/analytics-node; what it reported per call."""
    ensure_installed()
    node = shutil.which("node")
    assert node, "node is needed for @segment/analytics-node"
    done = subprocess.run(
        [node, str(JS / "node_client.mjs"), host, write_key],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=JS,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
