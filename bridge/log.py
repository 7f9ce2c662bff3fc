"""Structured logging: one canonical line per unit of work (a webhook, a job, a batch).

JSON lines when stderr is not a terminal (production, CI), readable key=value lines on
a terminal. Never log secrets or whole bodies: log ids, types and reasons.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from bridge.settings import Settings


def _dumps(obj: Any, **_: Any) -> str:
    # orjson is several times faster than json.dumps on the per-webhook log line.
    return orjson.dumps(obj, default=str).decode()


def configure(settings: Settings, *, stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger from settings (idempotent)."""
    stream = stream or sys.stderr
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    level = getattr(logging, settings.log_level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A lazy structlog logger with ``component=name`` (it follows later configure())."""
    return structlog.get_logger(component=name)
