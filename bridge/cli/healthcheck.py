"""``bridge healthcheck``: a container health probe for either role.

Web (default): ``GET http://127.0.0.1:$PORT/healthz`` answers 200.
Worker (``--worker``): an RQ worker on this host has sent a heartbeat recently, and
drain jobs are not stuck failing (:data:`DRAIN_FAILURES_UNHEALTHY` in a row, recorded
in ``bridge:drain:health`` and cleared by the next job that works).
Exit 0 when healthy, 1 with one line saying why not.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime

import click

from bridge.errors import ConfigError
from bridge.settings import Settings

#: Drain jobs failing in a row that make the worker probe say unhealthy. One or two
#: failures are a Redis blip the backoff rides out; three mean ~7 s of failing.
DRAIN_FAILURES_UNHEALTHY = 3


def _fail(message: str) -> None:
    click.echo(f"unhealthy: {message}", err=True)
    sys.exit(1)


@click.command()
@click.option("--worker", is_flag=True, help="Check this host's rq worker instead of the web.")
@click.option("--max-age", default=60.0, show_default=True, help="Worker heartbeat age, seconds.")
def healthcheck(worker: bool, max_age: float) -> None:
    """Probe this container's process; exit 1 when unhealthy."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        _fail("; ".join(exc.problems))
        return
    if not worker:
        url = f"http://127.0.0.1:{settings.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status != 200:
                    _fail(f"{url} answered {resp.status}")
        except (urllib.error.URLError, OSError) as exc:
            _fail(f"{url}: {exc}")
        click.echo("healthy: web")
        return

    from rq import Worker

    from bridge import keys
    from bridge.connections import redis_from_settings

    host = socket.gethostname()
    try:
        redis = redis_from_settings(settings)
        workers = [w for w in Worker.all(connection=redis) if w.hostname == host]
        drain: dict[bytes, bytes] = redis.hgetall(keys.DRAIN_HEALTH)  # type: ignore[assignment]
    except Exception as exc:  # any Redis failure makes the worker useless
        _fail(f"redis: {type(exc).__name__}: {exc}")
        return
    if not workers:
        _fail(f"no rq worker registered from host {host}")
    now = datetime.now(UTC)
    ages = [
        (now - w.last_heartbeat.replace(tzinfo=UTC)).total_seconds()
        for w in workers
        if w.last_heartbeat is not None
    ]
    if not ages or min(ages) > max_age:
        _fail(f"no rq worker on {host} sent a heartbeat in the last {max_age:.0f}s")
    failures = int(drain.get(b"failures", b"0"))
    if failures >= DRAIN_FAILURES_UNHEALTHY:
        error = drain.get(b"error", b"").decode(errors="replace")
        _fail(f"drain jobs failed {failures} times in a row (last: {error})")
    click.echo(f"healthy: {len(workers)} worker(s) on {host}")
