"""Structured logging: one canonical line per unit of work (a webhook, a job, a batch).

JSON lines when stderr is not a terminal (production, CI), readable key=value lines on
a terminal. Never log secrets or whole bodies: log ids, types and reasons.

In JSON mode the standard library's logging goes through the same renderer, so a
worker's output is one stream of JSON lines: RQ's own messages (``rq.worker``,
``rq.job``: started, job ids, "could not connect to Redis") become lines with
``event`` set to the message and ``logger`` to RQ's logger name.
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


#: Loggers of libraries that install plain-text handlers of their own (RQ does, and stops
#: propagation); in JSON mode their records go to the root handler instead.
FOREIGN_LOGGERS = ("rq.worker", "rq.job", "rq.scheduler", "rq.queue")


class _JSONHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler :func:`configure` installs (marked, so a reconfigure replaces it)."""


def _route_stdlib_logging(stream: Any) -> None:
    """Render stdlib log records as JSON lines on ``stream``, like structlog's."""
    handler = _JSONHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(serializer=_dumps),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JSONHandler)]:
        root.removeHandler(old)
    # The root keeps its level (WARNING): RQ's loggers set their own, and INFO from
    # every library (httpx logs each request) would drown the canonical lines.
    root.addHandler(handler)
    for name in FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        for own in [h for h in foreign.handlers if isinstance(h, logging.StreamHandler)]:
            foreign.removeHandler(own)
        foreign.propagate = True


def configure(settings: Settings, *, stream: Any = None, stdlib: bool = False) -> None:
    """Configure structlog from settings (idempotent); with ``stdlib`` (worker
    processes) and JSON output, also route stdlib logging through the same renderer."""
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
    if fmt == "json" and stdlib:
        _route_stdlib_logging(stream)


def get_logger(name: str) -> Any:
    """A lazy structlog logger with ``component=name`` (it follows later configure())."""
    return structlog.get_logger(component=name)
