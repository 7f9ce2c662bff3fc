"""Monthly recurring revenue of a subscription, from its items (``mrr()`` in mappings).

A subscription item bills ``unit amount x quantity`` every ``interval_count``
``interval``\\ s. Its monthly share is that amount times the number of such periods in
a month: ``month`` 1, ``year`` 1/12, ``week`` 52/12, ``day`` 365/12, each divided by
``interval_count``. The sum over the items is the MRR, computed exactly in decimal and
rounded half-even to the currency's minor unit once, at the end (so 190.00 a year is
15.83 a month, and 19.00 a month is more).

Stripe shapes handled: ``items.data[].price`` (2018+), ``items.data[].plan`` and the
legacy top-level ``plan`` + ``quantity`` (pass ``[{plan: ..., quantity: ...}]``),
``unit_amount_decimal`` (fractional minor units) over ``unit_amount``. Metered items
(``usage_type: metered``) have no fixed recurring amount and count 0. A price the
formula cannot value (tiered, no amount, unknown interval) makes the result ``null``,
never a guess.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from bridge.mappings import money

#: Billing periods per month, by Stripe interval.
PER_MONTH: dict[str, Decimal] = {
    "month": Decimal(1),
    "year": Decimal(1) / Decimal(12),
    "week": Decimal(52) / Decimal(12),
    "day": Decimal(365) / Decimal(12),
}

_CONTEXT = decimal.Context(prec=50)


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except decimal.InvalidOperation:
            return None
    return None


def item_monthly_minor(item: Any) -> Decimal | None:
    """One item's monthly amount in minor units (unrounded), or None if unknowable."""
    if not isinstance(item, dict):
        return None
    price = item.get("price") if isinstance(item.get("price"), dict) else None
    plan = item.get("plan") if isinstance(item.get("plan"), dict) else None
    source = price or plan
    if source is None:
        return None
    recurring = source.get("recurring") if price is not None else source
    if not isinstance(recurring, dict):
        return None
    if recurring.get("usage_type") == "metered":
        return Decimal(0)
    interval = recurring.get("interval")
    count = recurring.get("interval_count") or 1
    if interval not in PER_MONTH or not isinstance(count, int) or count < 1:
        return None
    unit = _amount(source.get("unit_amount_decimal", source.get("amount_decimal")))
    if unit is None:
        unit = _amount(source.get("unit_amount", source.get("amount")))
    if unit is None:
        return None  # tiered or custom pricing: no fixed unit amount
    quantity = item.get("quantity")
    qty = Decimal(1) if quantity is None else _amount(quantity)
    if qty is None:
        return None
    with decimal.localcontext(_CONTEXT):
        return unit * qty * PER_MONTH[interval] / Decimal(count)


def mrr(items: Any, currency: Any) -> Decimal | int | None:
    """Monthly recurring revenue of ``items`` in major units of ``currency``."""
    if not isinstance(items, list) or not items or not isinstance(currency, str):
        return None
    total = Decimal(0)
    for item in items:
        share = item_monthly_minor(item)
        if share is None:
            return None
        total += share
    places = money.exponent(currency)
    with decimal.localcontext(_CONTEXT):
        minor = total.quantize(Decimal(1), rounding=decimal.ROUND_HALF_EVEN)
        if places == 0:
            return int(minor)
        return minor.scaleb(-places)
