"""Baseline (c): the durable floor.

It reads the body, makes it durable with one Redis write (``RPUSH``) and answers a
small JSON 200: no verification, no deduplication. No design that answers 2xx only
once the event is durable can beat it, so bridge is measured against it (BRIEF.md,
section 3: bridge >= 0.9x the floor under the same gunicorn command).

Environment (read on the first request): ``REDIS_URL`` (default
``redis://127.0.0.1:6379/0``).

Run: ``gunicorn -c python:bridge.gunicorn_conf -b 127.0.0.1:8000 bench.apps.floor:app``
"""

from __future__ import annotations

import functools
import os

from flask import Flask, Response, request
from redis import Redis

#: The list the floor pushes to (flushed by the benchmark between runs).
LIST = "floor:events"

app = Flask(__name__)


@functools.cache
def _redis() -> Redis:
    return Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


@app.post("/webhooks/<source>")
def receive(source: str) -> Response:
    """Push the raw body to Redis, then answer."""
    _redis().rpush(LIST, request.get_data())
    return Response(b'{"status":"accepted"}', status=200, mimetype="application/json")
