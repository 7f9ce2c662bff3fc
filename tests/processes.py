"""Start real processes (gunicorn, rq worker) for end-to-end tests, and stop them by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bridge.devtools.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate()`` until truthy and return its value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Send ``sig`` to a process we started and wait for it; SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


@contextmanager
def gunicorn(
    env: Mapping[str, str], workers: int = 2, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """Serve ``bridge.intake:create_app()`` with real gunicorn; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
            "--no-control-socket",  # parallel gunicorns must not share ~/.gunicorn/gunicorn.ctl
            *extra,
            "bridge.intake:create_app()",
        ],
        env={**os.environ, **env},
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with {proc.returncode}")
        try:
            return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 20, what="gunicorn to answer /healthz")
        yield url
    finally:
        stop(proc)
