from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.backoff import MAX_RETRY_AFTER, MIN_RETRY_AFTER, backoff_delay


@given(st.integers(min_value=1, max_value=100), st.floats(0.01, 10), st.floats(0.01, 1000))
def test_delay_is_jittered_exponential_and_capped(attempt: int, base: float, cap: float) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap)
    full = min(cap, base * 2 ** min(attempt - 1, 40))
    assert full / 2 <= delay <= full


def test_delay_grows() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=1, cap=1000, rng=rng) for a in range(1, 8)]
    assert delays[-1] > delays[0] * 16


def test_retry_after_wins_and_is_bounded() -> None:
    assert backoff_delay(9, base=1, cap=300, retry_after=2.5) == 2.5
    assert backoff_delay(1, base=1, cap=300, retry_after=10**9) == MAX_RETRY_AFTER


@pytest.mark.parametrize("retry_after", [0.0, 0.001, 0.5])
def test_retry_after_now_or_in_the_past_still_waits_the_floor(retry_after: float) -> None:
    # Retry-After: 0 (or a date in the past, parsed as 0) must not mean "resend at once".
    assert backoff_delay(1, base=0.01, cap=300, retry_after=retry_after) == MIN_RETRY_AFTER == 1.0
