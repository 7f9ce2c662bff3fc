"""When to try a failing batch again: exponential backoff with jitter."""

from __future__ import annotations

import random

#: Longest ``Retry-After`` honoured as given (seconds); longer answers are capped.
MAX_RETRY_AFTER = 3600.0

#: Shortest wait before a retry that the collector asked for (seconds): ``Retry-After:
#: 0`` or a date in the past would otherwise resend the batch at once, again and again
#: (about 20 POSTs a second were measured).
MIN_RETRY_AFTER = 1.0

_RNG = random.Random()


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first).

    ``base * 2**(attempt-1)`` capped at ``cap``, with "equal jitter" (between half and
    all of it) so that workers retrying the same outage spread out. A collector's
    ``Retry-After`` wins when it is given (it knows when it will be ready), held between
    :data:`MIN_RETRY_AFTER` and :data:`MAX_RETRY_AFTER`.
    """
    if retry_after is not None and retry_after >= 0:
        return min(max(retry_after, MIN_RETRY_AFTER), MAX_RETRY_AFTER)
    r = rng or _RNG
    exp = min(cap, base * (2.0 ** min(max(attempt, 1) - 1, 40)))
    return exp / 2 + r.uniform(0, exp / 2)
