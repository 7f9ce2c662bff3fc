"""The one ISO-8601 timestamp format bridge writes: ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

Always UTC, always milliseconds (truncated, as Segment's libraries write them), always
``Z``: Segment's ``timestamp`` and ``sentAt``, the mapping function ``iso8601()`` and
the ``at`` of ``bridge dlq`` all come from here, so they read and sort alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["iso8601", "iso8601_millis"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso8601(moment: datetime | float | None = None) -> str:
    """``moment`` as ``2024-05-01T12:00:00.000Z``.

    ``moment`` is a datetime (a naive one is taken as UTC), Unix seconds (int or float),
    or None for now. Raises OverflowError, OSError or ValueError for seconds no datetime
    can hold.
    """
    if moment is None:
        moment = datetime.now(UTC)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _text(moment)


def iso8601_millis(millis: float) -> str:
    """Unix *milliseconds* as :func:`iso8601` text, exactly (no float rounding).

    A fraction of a millisecond is dropped. Raises OverflowError or ValueError out of range.
    """
    return _text(_EPOCH + timedelta(milliseconds=int(millis)))
