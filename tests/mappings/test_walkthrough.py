"""docs/mappings.md, "Add a mapping in five minutes", run literally on a fresh checkout.

A copy of the shipped ``mappings/`` stands for the clone; the environment holds no
secret but the one the walkthrough sets. Its commands are taken from the page itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import orjson
import yaml

from tests.conftest import ROOT
from tests.mappings.test_docs import BLOCKS, DOC, dedent
from tests.processes import BIN

START = DOC.index("## Add a mapping in five minutes")
WALKTHROUGH = DOC[START : DOC.index("\n## ", START + 1)]


def commands() -> list[str]:
    """The shell commands of the walkthrough, in order (inline code starting a command)."""
    return re.findall(r"`((?:[A-Z_]+=\S+ )*bridge [^`]+)`", WALKTHROUGH)


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "STRIPE_", "CLERK_", "GITHUB_", "PADDLE_"))
    }
    env["PATH"] = f"{BIN}:{env['PATH']}"
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing needs Redis here
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_walkthrough_works_on_a_fresh_checkout(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    blocks = [dedent(*b) for b in BLOCKS if DOC.index(b[1]) > START][:2]
    mapping, cases = blocks
    steps = commands()
    check, preview, test = (
        next(c for c in steps if " check" in c),
        next(c for c in steps if "preview paddle" in c),
        next(c for c in steps if c.endswith("mappings test")),
    )

    # 1. Create the file.
    (tmp_path / "mappings" / "paddle.yaml").write_text(mapping)
    # 2. Lint it: the other shipped sources are off (their secrets are unset), not errors.
    result = run(check, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "info: source 'stripe' is off: STRIPE_WEBHOOK_SECRET is not set" in result.stdout
    assert "paddle" not in result.stdout  # its secret is set: on, nothing to say
    # 3. Preview a payload (the test case's event, saved as payload.json).
    event = yaml.safe_load(cases)["cases"][0]["event"]
    (tmp_path / "payload.json").write_bytes(orjson.dumps(event))
    result = run(preview.replace("bridge preview", "bridge preview --json"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = orjson.loads(result.stdout)
    assert [(c["event"], c["userId"]) for c in calls] == [("Subscription Started", "u1")]
    assert calls[0]["properties"] == {"subscription_id": "sub_1", "currency": "EUR"}
    # 4. Write a test case; 5. run the tests (shipped cases and the new one).
    (tmp_path / "mappings" / "paddle.tests.yaml").write_text(cases)
    result = run(test, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " failed" not in result.stdout
