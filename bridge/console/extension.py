"""The operator console: watch webhooks arrive, see what they became, act on dead letters.

Off unless ``BRIDGE_CONSOLE_TOKEN`` is set. :func:`init_app` attaches it to the web app:
it records every webhook (:mod:`bridge.console.record`) and, unless
``BRIDGE_CONSOLE_PORT`` moves it to a process of its own (``bridge console``), mounts
the pages at ``/console``. Workers record what events became through the same module.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask

from bridge.console.record import IntakeRecorder, recording
from bridge.log import get_logger

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from redis import Redis

    from bridge.catalogue import Catalogue
    from bridge.settings import Settings

__all__ = ["ConsoleState", "init_app"]

#: Requests under this path are recorded.
PATH_PREFIX = "/webhooks/"

log = get_logger("bridge.console")


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

    # A WSGI middleware, not Flask hooks: it costs a webhook only what recording needs.
    app.wsgi_app = RecordWebhooks(app.wsgi_app, recorder)  # type: ignore[method-assign]

    if settings.console_port is None:
        from bridge.console.views import bp, configure

        configure(app, settings)
        app.register_blueprint(bp)


class RecordWebhooks:
    """Records each ``POST /webhooks/<source>`` in the console's log: the facts the view
    left in the WSGI environ (``bridge.webhook``: source, event id and type;
    ``bridge.webhook_body``: the raw body), the answer's status and JSON body, and the
    time to answer. Recording never changes the answer and never fails it."""

    def __init__(self, app: WSGIApplication, recorder: IntakeRecorder) -> None:
        self.app = app
        self.recorder = recorder

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(PATH_PREFIX):
            return self.app(environ, start_response)
        started = time.perf_counter()
        statuses: list[str] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        try:
            answer = b"".join(result)  # a small JSON answer
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        try:
            self._record(environ, statuses[-1] if statuses else "500", answer, started)
        except Exception:
            log.exception("console_record_failed")
        return [answer]

    def _record(
        self, environ: WSGIEnvironment, status_line: str, answer: bytes, started: float
    ) -> None:
        ms = round((time.perf_counter() - started) * 1000, 3)
        status = int(status_line[:3])
        try:
            parsed = orjson.loads(answer)
        except orjson.JSONDecodeError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else {}
        fields = environ.get("bridge.webhook") or {}
        ok = status == 200
        if ok:
            outcome = str(body.get("status"))
        elif status == 503:
            outcome = "unavailable"
        else:
            outcome = "rejected"
        source = fields.get("source") or environ.get("PATH_INFO", "")[len(PATH_PREFIX) :]
        self.recorder.webhook(
            source=str(source),
            event_id=fields.get("event_id"),
            event_type=fields.get("event_type"),
            outcome=outcome,
            reason="" if ok else str(body.get("reason", "")),
            status=status,
            ms=ms,
            body=environ.get("bridge.webhook_body") or b"",
            environ=environ,
        )
