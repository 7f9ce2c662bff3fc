"""Observers of batch delivery: ``flushing``, ``flushed`` and ``err``.

Each event gets a structured log line (``batch_flushing``, ``batch_flushed``,
``batch_failed`` for ``err``) and metrics (written by the flusher in the
same round trip as the Redis state change), and any Python callbacks subscribed
with :meth:`Observers.on` (``client.on("flushed", callback)``). A callback that raises
is logged and never affects delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bridge.log import get_logger

log = get_logger("bridge.delivery")

EventName = Literal["flushing", "flushed", "err"]
EVENTS: tuple[EventName, ...] = ("flushing", "flushed", "err")


@dataclass
class FlushEvent:
    """What observers receive. ``error``/``outcome`` are set for ``err`` only."""

    event: EventName
    batch_id: str
    calls: int
    attempt: int
    #: Bytes of the batch's calls as JSON (the body before the wrapper and gzip).
    size: int = 0
    status: int | None = None
    elapsed: float | None = None
    error: str | None = None
    reason: str | None = None
    #: For ``err``: ``"retry"`` (with ``retry_in`` seconds), ``"split"`` (the batch was
    #: halved to isolate refused calls), ``"dead_letter"``, or ``"kept_redis_full"``
    #: (Redis is full: the batch stays as it was until it can be retried or split).
    outcome: str | None = None
    retry_in: float | None = None
    #: The batch's calls as JSON (bytes), for subscribers that want the messageIds.
    payload: bytes = field(default=b"", repr=False)


Callback = Callable[[FlushEvent], None]


class Observers:
    """Subscribers per event name."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callback]] = {name: [] for name in EVENTS}

    def on(self, event: EventName, callback: Callback) -> Callable[[], None]:
        """Subscribe ``callback`` to ``event``; returns a function that unsubscribes."""
        if event not in self._subs:
            raise ValueError(f"unknown event {event!r}; expected one of {EVENTS}")
        self._subs[event].append(callback)
        return lambda: self._subs[event].remove(callback)

    def emit(self, ev: FlushEvent) -> None:
        fields = {
            k: v for k, v in ev.__dict__.items() if v is not None and k not in ("event", "payload")
        }
        if ev.event == "err":
            log.warning("batch_failed", **fields)
        elif ev.event == "flushed":
            log.info("batch_flushed", **fields)
        else:
            log.debug("batch_flushing", **fields)
        for callback in list(self._subs[ev.event]):
            try:
                callback(ev)
            except Exception:
                log.exception("observer_failed", observer_event=ev.event)
