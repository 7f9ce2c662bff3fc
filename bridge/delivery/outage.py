"""Telling Redis being unavailable apart from everything else.

A Redis that is down, timing out, loading, read-only, busy, or full under
``noeviction`` cannot take work *now*: whatever was being done is handed back and
tried again later, never dead-lettered. Any other error is about the data being
processed (and is narrowed down to the event that causes it).
"""

from __future__ import annotations

from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Redis errors that are outages rather than facts about an event.
UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OutOfMemoryError,
    ReadOnlyError,
    ClusterDownError,
    TryAgainError,
)

#: Error replies (first word) that are outages too but have no class of their own.
UNAVAILABLE_REPLIES = ("OOM", "MISCONF", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY")


def _reply_is(exc: ResponseError, replies: tuple[str, ...]) -> bool:
    message = str(exc)
    # Inside a script the refusal comes wrapped: "Error running script ...: -OOM ...".
    return message.startswith(replies) or any(f"-{reply} " in message for reply in replies)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis cannot take work right now (see the module doc)."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, ResponseError) and _reply_is(exc, UNAVAILABLE_REPLIES)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis refusing a write because it is full (``maxmemory``
    reached under ``noeviction``): reads and deletes still work."""
    if isinstance(exc, OutOfMemoryError):
        return True
    return isinstance(exc, ResponseError) and _reply_is(exc, ("OOM",))
