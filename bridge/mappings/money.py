"""Minor units to decimal amounts, by the currency's exponent.

Providers send amounts in a currency's *minor unit* (cents for USD, yen for JPY,
fils for KWD). :func:`to_decimal` divides by ``10 ** exponent`` where the exponent
follows Stripe's currency table, which the other providers share:

- zero-decimal currencies (:data:`ZERO_DECIMAL`) are returned as they are;
- three-decimal currencies (:data:`THREE_DECIMAL`) are divided by 1000;
- every other ISO-4217 code is divided by 100.

The result is an ``int`` (exponent 0) or the ``float`` nearest to the exact decimal,
which JSON-serialises as the shortest exact text (``1999`` USD -> ``19.99``).
"""

from __future__ import annotations

import re
from decimal import Decimal

from bridge.errors import MappingError

#: Currencies whose minor unit is the major unit (Stripe's zero-decimal list).
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)

#: Currencies with three decimals: amounts are in thousandths.
THREE_DECIMAL = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])

_CODE = re.compile(r"^[A-Za-z]{3}$")
_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,30}$")


def exponent(currency: str) -> int:
    """Decimal places of ``currency`` (case-insensitive ISO-4217 code)."""
    if not isinstance(currency, str) or not _CODE.match(currency):
        raise MappingError(f"money(): {currency!r} is not a three-letter currency code")
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor_units(amount: object) -> int:
    """``amount`` as an integer count of minor units, or a MappingError."""
    if isinstance(amount, bool):
        raise MappingError(f"money(): amount {amount!r} is not a number")
    if isinstance(amount, int):
        return amount
    if isinstance(amount, float):
        if amount.is_integer():
            return int(amount)
        raise MappingError(f"money(): amount {amount!r} is not a whole number of minor units")
    if isinstance(amount, str) and _INTEGER_TEXT.match(amount):
        return int(amount)
    raise MappingError(f"money(): amount {amount!r} is not a whole number of minor units")


def to_decimal(amount: object, currency: str) -> int | float:
    """Minor units -> major units by the exponent of ``currency``."""
    units = minor_units(amount)
    places = exponent(currency)
    if places == 0:
        return units
    # Decimal division is exact; float() then picks the nearest double, whose repr is
    # the exact decimal text for every amount under 2**53 minor units.
    return float(Decimal(units).scaleb(-places))
