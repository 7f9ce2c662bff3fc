"""bridge.timefmt: the one ISO-8601 form (UTC, milliseconds truncated, ``Z``).

Every expected string is worked out by hand (1700000000 s is 19675 days + 80000 s
after 1970-01-01: 2023-11-14 22:13:20).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bridge.timefmt import iso8601, iso8601_millis


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1700000000, "2023-11-14T22:13:20.000Z"),
        (1700000000.25, "2023-11-14T22:13:20.250Z"),
        # Milliseconds are truncated, never rounded up into the next second.
        (1700000000.9999, "2023-11-14T22:13:20.999Z"),
        (-1, "1969-12-31T23:59:59.000Z"),
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "2024-05-01T12:00:00.000Z"),
        # A naive datetime is UTC.
        (datetime(2024, 5, 1, 12, 0, 0, 999999), "2024-05-01T12:00:00.999Z"),
        # An aware one is converted to UTC.
        (
            datetime(2024, 5, 1, 14, 30, 0, 7000, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:30:00.007Z",
        ),
        (
            datetime(2024, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=5))),
            "2024-02-29T19:30:00.000Z",
        ),
    ],
)
def test_iso8601(moment: datetime | float, expected: str) -> None:
    assert iso8601(moment) == expected


def test_iso8601_without_argument_is_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    text = iso8601()
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert len(text) == len("2024-05-01T12:00:00.000Z")
    assert text[10] == "T"
    assert text.endswith("Z")
    assert before <= datetime.fromisoformat(text) <= after


@pytest.mark.parametrize(
    ("millis", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1654012591514, "2022-05-31T15:56:31.514Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        # The last millisecond datetime can hold: exact, where float seconds would round.
        (253402300799999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_iso8601_millis(millis: int, expected: str) -> None:
    assert iso8601_millis(millis) == expected


def test_out_of_range_is_an_error() -> None:
    with pytest.raises((OverflowError, OSError, ValueError)):
        iso8601(1e300)
    with pytest.raises((OverflowError, ValueError)):
        iso8601_millis(253402300800000)
