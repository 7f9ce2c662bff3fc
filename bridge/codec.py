"""The one JSON codec for Segment calls: exact numbers, and a clear error for what
cannot be encoded.

Amounts are :class:`decimal.Decimal` from the moment a mapping computes them
(``money()``) until they are written as JSON text, so ``123456789012345678.91`` leaves
bridge with every digit. Stored calls are re-read with :func:`loads` (decimals stay
Decimal) whenever they must be re-encoded (a batch split, a dead-letter replay), so no
round trip ever passes a number through a binary float.

A value orjson cannot encode (an integer of 2**64 or more, nesting deeper than 254
levels) raises :class:`~bridge.errors.MappingError`: the event that produced it is
dead-lettered with that reason, and never stops the events behind it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from bridge.errors import MappingError

__all__ = ["dumps", "loads"]


def _default(obj: object) -> object:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise TypeError(f"{obj} is not a finite number")
        # Plain positional notation ('1E+2' is valid JSON but surprises collectors).
        return orjson.Fragment(format(obj, "f").encode())
    raise TypeError(f"type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any, *, indent: bool = False) -> bytes:
    """``obj`` as compact JSON bytes (``indent``: two-space indented, for people);
    Decimals exactly; MappingError if impossible."""
    try:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_INDENT_2 if indent else None)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise MappingError(f"call cannot be encoded as JSON: {exc}") from None


def loads(data: bytes | str) -> Any:
    """Parse JSON written by :func:`dumps`, keeping fractional numbers as Decimal."""
    return json.loads(data, parse_float=Decimal)
