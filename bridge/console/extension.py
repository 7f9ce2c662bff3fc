"""The operator console: watch webhooks arrive, see what they became, act on dead letters.

Off unless ``BRIDGE_CONSOLE_TOKEN`` is set. :func:`init_app` attaches it to the web app:
it records every webhook (:mod:`bridge.console.record`) and, unless
``BRIDGE_CONSOLE_PORT`` moves it to a process of its own (``bridge console``), mounts
the pages at ``/console``. Workers record what events became through the same module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request

from bridge.console.record import IntakeRecorder, recording

if TYPE_CHECKING:
    from redis import Redis

    from bridge.catalogue import Catalogue
    from bridge.settings import Settings

__all__ = ["ConsoleState", "init_app"]

#: The endpoint whose requests are recorded.
WEBHOOK_ENDPOINT = "webhooks.receive"


@dataclass
class ConsoleState:
    """What the console pages use, attached as ``app.extensions["bridge.console"]``."""

    settings: Settings
    redis: Redis
    catalogue: Catalogue
    recorder: IntakeRecorder | None = None


def init_app(app: Flask, settings: Settings, redis: Redis, catalogue: Catalogue) -> None:
    """Record webhooks and mount the console, when BRIDGE_CONSOLE_TOKEN is set."""
    if not recording(settings):
        return
    recorder = IntakeRecorder(redis, settings)
    app.extensions["bridge.console"] = ConsoleState(settings, redis, catalogue, recorder)

    @app.before_request
    def _start_clock() -> None:
        if request.endpoint == WEBHOOK_ENDPOINT:
            g.console_started = time.perf_counter()

    @app.after_request
    def _record_webhook(response: Response) -> Response:
        if request.endpoint == WEBHOOK_ENDPOINT:
            _record(recorder, response)
        return response

    if settings.console_port is None:
        from bridge.console.views import bp, configure

        configure(app, settings)
        app.register_blueprint(bp)


def _record(recorder: IntakeRecorder, response: Response) -> None:
    import orjson

    started = g.get("console_started")
    ms = round((time.perf_counter() - started) * 1000, 3) if started else 0.0
    try:
        answer = orjson.loads(response.get_data())
    except orjson.JSONDecodeError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    fields = g.get("webhook") or {}
    ok = response.status_code == 200
    outcome = str(answer.get("status")) if ok else "rejected"
    if response.status_code == 503:
        outcome = "unavailable"
    recorder.webhook(
        source=str(fields.get("source") or (request.view_args or {}).get("source", "")),
        event_id=fields.get("event_id"),
        event_type=fields.get("event_type"),
        outcome=outcome,
        reason="" if ok else str(answer.get("reason", "")),
        status=response.status_code,
        ms=ms,
        environ=request.environ,
        body=g.get("webhook_body") or b"",
    )
