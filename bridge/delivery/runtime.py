"""Everything one worker process needs to deliver, built once from Settings.

A drain job running in a SimpleWorker reuses the process's Runtime (mappings parsed
once, one HTTP connection pool); in a forking worker each work horse builds its own.
"""

from __future__ import annotations

import threading
from functools import cached_property

from redis import Redis

from bridge.connections import redis_from_settings
from bridge.console.record import DeliveryRecorder
from bridge.delivery.deadletter import DeadLetters
from bridge.delivery.flusher import Flusher
from bridge.delivery.inbox import Inbox
from bridge.delivery.mapper import Mapper
from bridge.delivery.observers import Observers
from bridge.delivery.outbox import Outbox
from bridge.delivery.sender import Sender
from bridge.settings import Settings

#: Set by the worker on a warm shutdown (SIGTERM): jobs stop taking work and hand back.
STOPPING = threading.Event()


class Runtime:
    """Redis, mappings, sender and stores for one process."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.redis = redis or redis_from_settings(settings)
        self.observers = Observers()
        self.inbox = Inbox(self.redis)
        self.outbox = Outbox(self.redis)
        self.dead_letters = DeadLetters(self.redis)
        # The operator console's record of what events became (None: console off).
        self.console = DeliveryRecorder.for_settings(self.redis, settings)
        if self.console is not None:
            self.observers.on("flushed", self.console.on_flush)
            self.observers.on("err", self.console.on_flush)

    @cached_property
    def mapper(self) -> Mapper:
        return Mapper(self.settings, self.redis)

    @cached_property
    def sender(self) -> Sender:
        key = self.settings.segment_write_key
        return Sender(
            self.settings.collector_batch_url,
            key.get_secret_value() if key else None,
            timeout=self.settings.http_timeout,
            gzip_body=self.settings.gzip,
        )

    @cached_property
    def flusher(self) -> Flusher:
        return Flusher(
            self.redis, self.settings, self.sender, self.observers, stopping=STOPPING.is_set
        )

    def after_fork(self) -> None:
        """In a forked child: drop the inherited HTTP pool (its sockets are the
        parent's) so this process opens its own; Redis pools reconnect by themselves."""
        self.__dict__.pop("flusher", None)
        self.__dict__.pop("sender", None)

    def close(self) -> None:
        if "sender" in self.__dict__:
            self.sender.close()
        self.redis.close()


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's Runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            from bridge import log

            settings = Settings.from_env()
            log.configure(settings, stdlib=True)  # RQ's lines as JSON too
            _runtime = Runtime(settings)
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install (or clear) the process's Runtime: for tests and custom workers."""
    global _runtime
    with _lock:
        _runtime = runtime
