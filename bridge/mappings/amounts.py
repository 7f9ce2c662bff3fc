"""Major-unit decimal amounts (``"199.00"``) checked against the currency's exponent.

Shopify and WooCommerce send amounts as decimal text in *major* units; Stripe-style
providers send integers in minor units (see :mod:`bridge.mappings.money`). ``major()``
reads the text exactly (never through a float), and rejects an amount with more
significant decimals than the currency has (``"1.005"`` USD, ``"1500.5"`` JPY): that is a
mapping error (dead letter), never a rounded guess. Trailing zeros beyond the exponent
are fine (``"1500.00"`` JPY is 1500). The result has exactly the currency's places:
an ``int`` for zero-decimal currencies, else a :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import re
from decimal import Decimal

from bridge.errors import MappingError
from bridge.mappings.money import exponent

_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


def from_major(amount: object, currency: object) -> int | Decimal:
    """``amount`` (decimal text or a number in major units) as an exact amount."""
    places = exponent(currency)  # type: ignore[arg-type,unused-ignore]
    if isinstance(amount, bool):
        raise MappingError(f"major(): amount {amount!r} is not a number")
    if isinstance(amount, int | Decimal):
        value = Decimal(amount)
    elif isinstance(amount, float):
        # A JSON number parsed as a float: its shortest repr is the text that was sent.
        value = Decimal(repr(amount))
    elif isinstance(amount, str) and _DECIMAL_TEXT.fullmatch(amount.strip()):
        value = Decimal(amount.strip())
    else:
        raise MappingError(f"major(): amount {amount!r} is not a decimal number")
    if not value.is_finite():
        raise MappingError(f"major(): amount {amount!r} is not a finite number")
    quantum = Decimal(1).scaleb(-places)
    exact = value.quantize(quantum)
    if exact != value:
        raise MappingError(
            f"major(): amount {amount!r} has more decimals than "
            f"{str(currency).upper()} has ({places})"
        )
    return int(exact) if places == 0 else exact


def to_minor(amount: object, currency: object) -> int:
    """``amount`` in major units as an integer count of minor units (``"29.35"`` USD ->
    2935), for arithmetic with ``add``/``subtract`` before ``money()``."""
    value = from_major(amount, currency)
    places = exponent(currency)  # type: ignore[arg-type,unused-ignore]
    return int(Decimal(value).scaleb(places))
