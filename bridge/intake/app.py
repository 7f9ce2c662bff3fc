"""The application factory of the ``web`` process."""

from __future__ import annotations

import sys
from typing import TextIO

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from bridge import log as logging_setup
from bridge.catalogue import Catalogue
from bridge.collect import api as collect_api
from bridge.connections import redis_from_settings
from bridge.console.extension import init_app as init_console
from bridge.errors import ConfigError
from bridge.intake import health, webhooks
from bridge.intake.state import IntakeState
from bridge.intake.store import EventStore
from bridge.settings import Settings, redact_url

log = logging_setup.get_logger("bridge.intake")


def create_app(settings: Settings | None = None, *, log_stream: TextIO | None = None) -> Flask:
    """Build the web app. With no settings, read them from the environment now.

    Raises :class:`~bridge.errors.ConfigError` (one message per problem) when the
    settings or the mapping files are invalid, so a bad deploy fails at boot.
    ``log_stream`` replaces stderr as the log destination (tests read it).
    """
    if settings is None:
        # Started by gunicorn from the environment: say what is wrong, one line per
        # problem, and exit 4 so the gunicorn master stops ("App failed to load")
        # instead of restarting workers that can never boot.
        try:
            return create_app(Settings.from_env(), log_stream=log_stream)
        except ConfigError as exc:
            print(f"bridge: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(4) from None
    logging_setup.configure(settings, stream=log_stream)
    catalogue = Catalogue.from_settings(settings)
    redis = redis_from_settings(settings)

    app = Flask("bridge")
    # Werkzeug enforces this too, for form parsing; the view reads the stream itself.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["bridge"] = IntakeState(
        settings=settings,
        redis=redis,
        catalogue=catalogue,
        store=EventStore(
            redis,
            settings.dedup_ttl,
            replicas_ack=settings.replicas_ack,
            replicas_ack_timeout=settings.replicas_ack_timeout,
        ),
    )
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    init_console(app, settings, redis, catalogue)
    collect_api.init_app(app, settings, catalogue, redis)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        reason = (exc.name or "error").lower().replace(" ", "_")
        return jsonify(error=exc.description, reason=reason), code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        # Never a stack trace in the answer; the log line has the exception.
        log.exception("unhandled_error", error=type(exc).__name__)
        return jsonify(error="internal error", reason="internal_error"), 500

    log.info("sources", **catalogue.summary())
    log.info("web_started", sources=catalogue.on, redis=redact_url(settings.redis_url))
    return app
