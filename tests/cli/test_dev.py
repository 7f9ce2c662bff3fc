"""The README's first command, as a newcomer runs it: ``./scripts/dev``.

It must start everything, print a ``bridge send`` line that works when pasted, show
the resulting ``Order Completed`` call, keep it in a file, and stop cleanly on Ctrl-C.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from bridge.devtools.redis_server import free_port
from tests.processes import ROOT


class Output:
    """Lines a process prints, collected by a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, line in enumerate(self.lines):
                if needle in line:
                    return i
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not printed in {timeout}s:\n" + "\n".join(self.lines))


@pytest.mark.e2e
def test_dev_runs_the_pipeline_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SEGMENT_WRITE_KEY", "STRIPE_WEBHOOK_SECRET", "REDIS_URL"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    data = tmp_path / "dev"
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "dev"), "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        at = out.wait_for("Send a signed sample event to stripe", timeout=240)
        out.wait_for("Ctrl-C stops everything", timeout=10)
        command = out.lines[at + 1].strip()
        assert f"http://127.0.0.1:{port}/webhooks/<source>" in "\n".join(out.lines)

        # Paste the printed line into a shell, as the banner says.
        sent = subprocess.run(
            ["sh", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert '"status":"accepted"' in sent.stdout
        out.wait_for("Order Completed", timeout=30)
        calls = [orjson.loads(line) for line in (data / "calls.jsonl").read_text().splitlines()]
        assert [c["event"] for c in calls] == ["Order Completed"]
        assert calls[0]["userId"] == "user_1001"
        assert calls[0]["properties"]["revenue"] == 40.0
        assert shlex.split(command)[-1] == "--new-id"

        # First-party collection is on too, with the printed development write key.
        lines = "\n".join(out.lines)
        assert f"http://127.0.0.1:{port}/v1/batch" in lines
        [key] = [ln.split("=", 1)[1].split()[0] for ln in out.lines if "BRIDGE_WRITE_KEYS=" in ln]
        call = {"userId": "u9", "event": "Tried Collection"}
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/track", json=call, auth=(key, ""))
        assert resp.status_code == 200, resp.text
        out.wait_for("Tried Collection", timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, "\n".join(out.lines[-30:])
    # Nothing is left listening: the web port is free again.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
