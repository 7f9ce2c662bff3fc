"""Minor units to exact decimal amounts, by the currency's exponent.

Providers send amounts in a currency's *minor unit* (cents for USD, yen for JPY,
fils for KWD). :func:`to_decimal` divides by ``10 ** exponent``, exactly:

- the exponents are ISO 4217's, from the ``iso4217`` package (public domain, the
  ISO 4217 maintenance agency's own table, re-released with each amendment);
- :data:`STRIPE_EXCEPTIONS` lists where Stripe's API departs from ISO, as Stripe
  documents it (docs.stripe.com/currencies, "Zero-decimal currencies" and "Special
  cases"): MGA is zero-decimal at Stripe (ISO: 2); ISK stays two-decimal in Stripe's
  API (``100`` is 1 króna) although ISO and the card networks made it zero-decimal.
  HUF and TWD are two-decimal for charges (ISO agrees; only *payouts* are whole
  units, still written as multiples of 100). UGX is zero-decimal (ISO agrees). The
  three-decimal currencies (BHD, JOD, KWD, OMR, TND) are ISO's. The exceptions apply
  to every source: the other shipped mappings (GitHub) only bill USD cents, and a
  mapping for a provider whose ISK or MGA amounts follow ISO would need its own rule;
- :data:`WITHDRAWN` keeps codes that ISO has withdrawn but that providers still send
  (Stripe still names the São Tomé dobra ``std`` and accepted ``ang`` until its
  replacement by XCG): their exponents are those of ISO 4217's list of historic
  denominations;
- a code that is none of these (``XYZ``), or a code without a minor unit (gold,
  ``XXX``), is a :class:`~bridge.errors.MappingError`: the event is dead-lettered
  with that reason instead of delivering an amount off by a factor of 100.

The result is an ``int`` (exponent 0) or a :class:`~decimal.Decimal` with exactly
``exponent`` places (``1999`` USD -> ``Decimal('19.99')``); bridge's codec writes it
digit for digit, so amounts beyond 2**53 stay exact.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from types import MappingProxyType

from iso4217 import Currency

from bridge.errors import MappingError

#: Where Stripe's API uses another exponent than ISO 4217 (see the module docstring).
STRIPE_EXCEPTIONS: MappingProxyType[str, int] = MappingProxyType({"MGA": 0, "ISK": 2})

#: Withdrawn ISO codes that providers still send, with their historic exponents.
WITHDRAWN: MappingProxyType[str, int] = MappingProxyType(
    {
        "ANG": 2,  # Netherlands Antillean guilder, replaced by XCG (2025)
        "STD": 2,  # São Tomé dobra before 2018 (STN); Stripe's code for it
        "SLL": 2,  # Sierra Leonean leone before 2022 (SLE)
        "HRK": 2,  # Croatian kuna, until the euro (2023)
        "VEF": 2,  # Venezuelan bolívar fuerte (VES since 2018)
        "MRO": 2,  # Mauritanian ouguiya before 2018 (MRU)
        "ZWL": 2,  # Zimbabwe dollar until 2024 (ZWG)
        "CUC": 2,  # Cuban convertible peso until 2021
        "BYR": 0,  # Belarusian ruble before 2016 (BYN)
    }
)


def _exponents() -> dict[str, int]:
    table = dict(WITHDRAWN)
    for currency in Currency:
        if currency.exponent is not None:  # None: gold, SDR, test codes (no minor unit)
            table[currency.code] = currency.exponent
    table.update(STRIPE_EXCEPTIONS)
    return table


#: Currency code (upper case) -> number of decimal places of its minor unit.
EXPONENTS: MappingProxyType[str, int] = MappingProxyType(_exponents())

# fullmatch, never ``$``: ``$`` also matches before a trailing newline ("jpy\n").
_CODE = re.compile(r"[A-Za-z]{3}")
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")


def exponent(currency: object) -> int:
    """Decimal places of ``currency``: a three-letter code in either case."""
    if not isinstance(currency, str) or not _CODE.fullmatch(currency):
        raise MappingError(f"money(): {currency!r} is not a three-letter currency code")
    code = currency.upper()
    places = EXPONENTS.get(code)
    if places is None:
        raise MappingError(
            f"money(): unknown currency {code!r} (not an ISO 4217 code with a minor unit), "
            "so its number of decimals is unknown"
        )
    return places


def minor_units(amount: object) -> int:
    """``amount`` as an integer count of minor units, or a MappingError."""
    if isinstance(amount, bool):
        raise MappingError(f"money(): amount {amount!r} is not a number")
    if isinstance(amount, int):
        return amount
    if isinstance(amount, float):
        # A float past 2**53 may already be another number than the one sent.
        if math.isfinite(amount) and amount.is_integer() and abs(amount) <= 2**53:
            return int(amount)
        raise MappingError(f"money(): amount {amount!r} is not an exact whole number")
    if isinstance(amount, Decimal):
        if amount.is_finite() and amount == amount.to_integral_value():
            return int(amount)
        raise MappingError(f"money(): amount {amount} is not a whole number of minor units")
    if isinstance(amount, str) and _INTEGER_TEXT.fullmatch(amount):
        return int(amount)
    raise MappingError(f"money(): amount {amount!r} is not a whole number of minor units")


def to_decimal(amount: object, currency: object) -> int | Decimal:
    """Minor units -> major units by the exponent of ``currency``, exactly."""
    places = exponent(currency)
    units = minor_units(amount)
    if places == 0:
        return units
    # Decimal's constructor is exact whatever the context precision (scaleb and
    # division would round to 28 digits).
    return Decimal(f"{units}E-{places}")
