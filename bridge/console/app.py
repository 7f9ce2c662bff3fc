"""The console on a port of its own: ``bridge console`` (gunicorn serving :func:`create_app`).

With ``BRIDGE_CONSOLE_PORT`` set, the web process records webhooks but does not serve
``/console``; this app serves only the console (and ``/healthz``), so the webhook URL
can be public while the console stays on a private network.
"""

from __future__ import annotations

import sys

from flask import Flask, Response, jsonify, redirect

from bridge import log as logging_setup
from bridge.catalogue import Catalogue
from bridge.connections import redis_from_settings
from bridge.console.extension import ConsoleState
from bridge.errors import ConfigError
from bridge.settings import Settings

#: What gunicorn serves for ``bridge console``.
WSGI_APP = "bridge.console.app:create_app()"


def create_app(settings: Settings | None = None) -> Flask:
    """The console alone. Exits 4 (gunicorn stops) on bad settings or no token."""
    if settings is None:
        try:
            settings = Settings.from_env()
            if settings.console_token is None:
                raise ConfigError(
                    "the console is off", ["BRIDGE_CONSOLE_TOKEN: set it to turn the console on"]
                )
            return create_app(settings)
        except ConfigError as exc:
            print(f"bridge: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(4) from None
    from bridge.console.views import bp, configure

    logging_setup.configure(settings)
    app = Flask("bridge.console")
    app.extensions["bridge.console"] = ConsoleState(
        settings, redis_from_settings(settings), Catalogue.from_settings(settings)
    )
    configure(app, settings)
    app.register_blueprint(bp)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    @app.get("/")
    def root() -> Response:
        return redirect("/console/")  # type: ignore[return-value]

    return app


def console_command(bind: str) -> list[str]:
    """``gunicorn`` serving the console alone on ``bind``."""
    return ["gunicorn", "--bind", bind, "--workers", "2", "--no-control-socket", WSGI_APP]
