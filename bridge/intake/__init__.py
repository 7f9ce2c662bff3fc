"""The web process: webhook intake, health and metrics (``create_app``)."""

from bridge.intake.app import create_app

__all__ = ["create_app"]
