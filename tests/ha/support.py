"""A real primary, replicas and a Sentinel for the high-availability tests, all started
from the binary bridge finds (bridge/devtools/redis_server.py); ``redis-sentinel`` is
``redis-server --sentinel``. Every wait is bounded; everything is stopped by PID."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from bridge.devtools.redis_server import RedisServer, find_redis_server, free_port

#: Name the Sentinel monitors the primary under.
MASTER = "bridge"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        # A server still starting refuses connections: that is "not yet".
        with contextlib.suppress(RedisError, OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def replicate(replica: RedisServer, primary: RedisServer) -> None:
    """Make ``replica`` follow ``primary`` and wait until it is in sync."""
    client = Redis(host="127.0.0.1", port=replica.port)
    client.replicaof("127.0.0.1", str(primary.port))
    wait_for(
        f"replica {replica.port} in sync",
        lambda: client.info("replication").get("master_link_status") == "up",
    )
    client.close()


@dataclass
class SentinelServer:
    """One ``redis-server --sentinel`` monitoring ``primary_port`` as :data:`MASTER`,
    with a quorum of one and a down-after of one second: CI fails over in seconds
    (300 ms made a loaded 2-core machine's Sentinel flap between replicas)."""

    data_dir: Path
    primary_port: int
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> SentinelServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        conf = self.data_dir / "sentinel.conf"  # Sentinel rewrites it: its own file
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {self.data_dir}",
                    f"logfile {self.data_dir / 'sentinel.log'}",
                    f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 1",
                    f"sentinel down-after-milliseconds {MASTER} 1000",
                    f"sentinel failover-timeout {MASTER} 3000",
                    f"sentinel parallel-syncs {MASTER} 2",
                    "",
                ]
            )
        )
        self.process = subprocess.Popen(
            [find_redis_server(), str(conf), "--sentinel"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = self.client()
        wait_for("sentinel up", lambda: bool(client.ping()))
        return self

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True)

    def primary_port_now(self) -> int:
        """The primary's port as the Sentinel names it now."""
        _, port = self.client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def replicas_known(self) -> int:
        return len(self.client().sentinel_slaves(MASTER))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
