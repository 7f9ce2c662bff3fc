"""What a new user hit with ``bridge dev``: a second instance on a busy port (or on the
same data dir), a dead letter without its reason, and Ctrl-C stopping Redis under the
worker.

One ``bridge dev`` (the console script, as ./scripts/dev execs it) on a mapping folder
of the test's own, started as a terminal starts a foreground job: in its own process
group, which Ctrl-C signals as a whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from bridge.devtools.redis_server import free_port
from bridge.providers import get_provider
from tests.cli.test_dev import Output
from tests.processes import BIN

SHOP = """\
provider: stripe
secrets: ${SHOP_SECRET}
identity:
  user_id: data.object.metadata.user_id
rules:
  - name: paid
    on: invoice.paid
    emit:
      - type: track
        event: Order Completed
        properties:
          total: money(data.object.amount_paid, data.object.currency)
"""


def dev_env() -> dict[str, str]:
    drop = {"SEGMENT_WRITE_KEY", "REDIS_URL", "SHOP_SECRET", "PORT", "BRIDGE_MAPPINGS_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.e2e
def test_dev_port_check_dead_letter_reason_and_ctrl_c(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "shop.yaml").write_text(SHOP)
    port = free_port()
    data = tmp_path / "dev"
    env = dev_env()
    proc = subprocess.Popen(
        [str(BIN / "bridge"), "dev", "--port", str(port), "--data-dir", str(data)],
        cwd=tmp_path,  # finds ./mappings, as in a checkout
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a job of its own, as a shell runs it
    )
    out = Output(proc)
    try:
        out.wait_for("Ctrl-C stops everything", timeout=120)

        # A second bridge dev on the same port fails before printing a banner.
        second = subprocess.run(
            [str(BIN / "bridge"), "dev", "--port", str(port), "--data-dir", str(tmp_path / "2")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2
        assert f"port {port} on 127.0.0.1 is in use" in second.stderr
        assert "bridge dev is running" not in second.stdout + second.stderr
        assert not (tmp_path / "2").exists()  # nothing was started

        # Nor may a second one share the data dir (two Redis servers on one AOF file).
        same_dir = subprocess.run(
            [str(BIN / "bridge"), "dev", "--port", str(free_port()), "--data-dir", str(data)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert same_dir.returncode == 2
        assert f"{data} is in use by another bridge dev" in same_dir.stderr
        assert "bridge dev is running" not in same_dir.stdout + same_dir.stderr

        # An event whose currency is unknown is dead-lettered, and dev says why.
        event = {
            "id": "evt_xyz_1",
            "type": "invoice.paid",
            "created": 1700000000,
            "data": {
                "object": {"amount_paid": 1999, "currency": "xyz", "metadata": {"user_id": "u"}}
            },
        }
        payload = tmp_path / "xyz.json"
        payload.write_bytes(orjson.dumps(event))
        sent = subprocess.run(
            [
                str(BIN / "bridge"),
                "send",
                "shop",
                str(payload),
                "--url",
                f"http://127.0.0.1:{port}",
            ],
            cwd=tmp_path,
            env={**env, "SHOP_SECRET": get_provider("stripe").dev_secret()},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        line = out.lines[out.wait_for("dead letter ", timeout=60)]
        assert "event shop/evt_xyz_1" in line
        assert "unknown currency 'XYZ'" in line
        out.wait_for("dlq show", timeout=5)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            code = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = "\n".join(out.lines)
    assert code == 0, text[-3000:]
    # Redis was stopped by bridge dev (SIGTERM, after the worker), not by the Ctrl-C.
    redis_log = (data / "redis" / "redis.log").read_text()
    assert "Received SIGTERM" in redis_log
    assert "Received SIGINT" not in redis_log
    assert "Traceback" not in text
