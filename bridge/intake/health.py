"""``GET /healthz``, ``GET /readyz`` and ``GET /metrics``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from bridge import keys, metrics
from bridge.intake.state import IntakeState
from bridge.intake.store import REDIS_DOWN, REDIS_ERRORS, unavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """The process is up (no dependencies checked)."""
    return jsonify(status="ok"), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to take webhooks: Redis takes a write and at least one source is on.

    A write, not a PING: a Redis over ``maxmemory`` (``noeviction``), a read-only
    replica or one whose last save failed (``MISCONF``) answers PING but refuses
    every event, and ``problems`` says which. ``sources`` lists the sources that are
    on, ``off`` the others with the reason."""
    state: IntakeState = current_app.extensions["bridge"]
    problems = []
    try:
        state.redis.set(keys.READY_PROBE, "1", ex=60)
    except REDIS_DOWN as exc:
        problems.append(f"redis unreachable: {type(exc).__name__}")
    except REDIS_ERRORS as exc:
        if unavailable(exc).reason == "store_full":
            detail = "memory full (used memory over maxmemory)"
        else:
            detail = str(exc)[:200]
        problems.append(f"redis reachable but refusing writes: {detail}")
    catalogue = state.catalogue
    if not catalogue.on:
        problems.append("no source is on: set the secret of at least one source")
    body = {"sources": catalogue.on, "off": catalogue.off, "problems": problems}
    if problems:
        return jsonify(status="unavailable", **body), 503
    return jsonify(status="ok", **body), 200


@bp.get("/metrics")
def metrics_view() -> Response | tuple[Response, int]:
    """Prometheus text format, cluster-wide (the counters live in Redis)."""
    state: IntakeState = current_app.extensions["bridge"]
    try:
        text = metrics.render(state.redis)
    except REDIS_DOWN:
        return jsonify(error="metrics store unavailable", reason="unavailable"), 503
    return Response(text, mimetype="text/plain; version=0.0.4; charset=utf-8")
