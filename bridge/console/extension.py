"""The operator console: watch webhooks arrive, see what they became, act on dead letters.

Off unless ``BRIDGE_CONSOLE_TOKEN`` is set. :func:`init_app` attaches it to the web app:
it records every webhook (:mod:`bridge.console.record`) and, unless
``BRIDGE_CONSOLE_PORT`` moves it to a process of its own (``bridge console``), mounts
the pages at ``/console``. Workers record what events became through the same module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask

from bridge.console.record import IntakeRecorder, recording

if TYPE_CHECKING:
    from redis import Redis

    from bridge.catalogue import Catalogue
    from bridge.settings import Settings

__all__ = ["ConsoleState", "init_app"]


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
    # The webhook view records through the intake state (bridge.intake.webhooks): a
    # stored event's entry goes with the accept script, others are buffered.
    app.extensions["bridge"].recorder = recorder

    if settings.console_port is None:
        from bridge.console.views import bp, configure

        configure(app, settings)
        app.register_blueprint(bp)
