"""The command lines of bridge's processes: one place, used by ``bridge dev`` and
checked against the ``Procfile`` by the tests, so the two cannot drift apart."""

from __future__ import annotations

#: The WSGI application gunicorn serves.
WSGI_APP = "bridge.intake:create_app()"

#: The gunicorn settings module of the web process (``gunicorn --config``).
GUNICORN_CONF = "python:bridge.gunicorn_conf"

#: The rq worker class: a SimpleWorker that also flushes, retries and recovers while
#: idle (see bridge/delivery/worker.py and bench/README.md for why).
WORKER_CLASS = "bridge.delivery.worker.BridgeWorker"

#: The Redis client class RQ builds the worker's connection with: it reads bridge's
#: settings, so ``REDIS_SENTINELS`` reaches workers too (bridge/connections.py).
CONNECTION_CLASS = "bridge.connections.RQRedis"


def web_command(bind: str, *, workers: int | None = None) -> list[str]:
    """``gunicorn`` serving the intake app on ``bind`` (``HOST:PORT``) with the shipped
    settings (bridge/gunicorn_conf.py: gthread workers, so a slow client holds a thread
    and not a worker; 25 s graceful timeout). Without ``workers`` gunicorn reads
    ``WEB_CONCURRENCY``.
    """
    command = ["gunicorn", "--config", GUNICORN_CONF, "--bind", bind]
    if workers is not None:
        command += ["--workers", str(workers)]
    return [*command, WSGI_APP]


def worker_command(redis_url: str, *, quiet: bool = False) -> list[str]:
    """``rq worker`` for the bridge queue with bridge's worker class (``quiet``: RQ's own
    per-job lines off; bridge's structured lines stay)."""
    command = ["rq", "worker", "--worker-class", WORKER_CLASS]
    command += ["--connection-class", CONNECTION_CLASS, "--url", redis_url]
    return [*command, *(["--quiet"] if quiet else []), "bridge"]
