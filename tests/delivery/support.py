"""Helpers for the delivery tests: events, settings, bounded waits, real rq workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from redis import Redis

from bridge.devtools import processes
from bridge.envelope import Envelope
from bridge.intake.store import EventStore
from bridge.providers import VerifiedEvent
from bridge.settings import Settings
from tests.processes import wait_until as wait_until  # re-exported for the delivery tests

HERE = Path(__file__).resolve().parent
MAPPINGS = HERE / "mappings"
MAPPINGS_FIXED = HERE / "mappings_fixed"
VENV_BIN = Path(sys.executable).parent

#: Fast clocks for tests: everything that waits in production waits briefly here.
FAST = {
    "BRIDGE_FLUSH_INTERVAL": "0.2",
    "BRIDGE_RETRY_BASE": "0.05",
    "BRIDGE_RETRY_MAX": "0.5",
    "BRIDGE_LEASE": "2",
    "BRIDGE_HTTP_TIMEOUT": "1",
    "BRIDGE_WORKER_TICK": "0.1",
    "BRIDGE_DRAIN_BUDGET": "2",
}


def order_body(i: int, *, user: str | None = "u", padding: str = "") -> bytes:
    meta = {"user_id": f"{user}{i}"} if user else {}
    obj = {"id": f"ord_{i}", "metadata": meta, "padding": padding}
    return orjson.dumps(
        {"id": f"evt_{i}", "type": "order.paid", "created": 1700000000, "data": {"object": obj}}
    )


def message_id(i: int) -> str:
    """The messageId the shop mapping gives order ``i``."""
    return f"shop:evt_{i}:order-paid:0"


def accept(redis: Redis, ids: Iterable[int], **kw: Any) -> None:
    """Store orders through the real intake store (dedup, inbox, kick)."""
    store = EventStore(redis, dedup_ttl=7 * 24 * 3600)
    for i in ids:
        raw = order_body(i, **kw)
        event = VerifiedEvent(
            id=f"evt_{i}", type="order.paid", time=1700000000.0, body=None, raw=raw
        )
        store.accept("shop", event)


def push_unkicked(redis: Redis, ids: Iterable[int], **kw: Any) -> None:
    """Put orders in the inbox as if the web process died before enqueueing a job."""
    items = [
        Envelope.encode(
            source="shop",
            id=f"evt_{i}",
            type="order.paid",
            time=1700000000.0,
            received_at=time.time(),
            raw=order_body(i, **kw),
        )
        for i in ids
    ]
    redis.rpush("bridge:inbox", *items)


def env(redis_url: str, endpoint: str, mappings: Path = MAPPINGS, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "SEGMENT_ENDPOINT": endpoint,
        "SEGMENT_WRITE_KEY": "test-write-key",
        "BRIDGE_MAPPINGS_DIR": str(mappings),
        "BRIDGE_LOG_FORMAT": "json",
        **FAST,
        **extra,
    }


def settings(redis_url: str, endpoint: str, **extra: str) -> Settings:
    return Settings.from_env(env(redis_url, endpoint, **extra))


class Worker:
    """A real ``rq worker`` process, started with the production command line."""

    def __init__(self, environ: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("ab")
        full = {**os.environ, **environ}
        self.process = subprocess.Popen(
            # The production command line (bridge.devtools.processes), quieter.
            [
                str(VENV_BIN / "rq"),
                *processes.worker_command(environ["REDIS_URL"])[1:-1],
                "--logging_level",
                "WARNING",
                "bridge",
            ],
            env=full,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            cwd=HERE.parent.parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM and wait; returns how long the worker took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._fh.close()

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_bytes().splitlines():
            if line.startswith(b"{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    out.append(orjson.loads(line))
        return out
