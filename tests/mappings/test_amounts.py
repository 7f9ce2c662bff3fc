"""major() and minor(): decimal text in major units, exact, by the currency's exponent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bridge.errors import MappingError
from bridge.mappings.amounts import from_major, to_minor
from bridge.mappings.expressions import compile_value


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("29.35", "USD", 2935),
        ("29.35", "usd", 2935),
        ("0.10", "EUR", 10),
        ("0.1", "EUR", 10),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),  # zeros past the exponent are fine
        ("12.345", "KWD", 12345),
        ("-5.00", "USD", -500),
        ("92233720368547758.07", "USD", 9223372036854775807),  # no float on the way
        (7, "USD", 700),
        (0.29, "USD", 29),  # a JSON float: its shortest text, 0.29, not 0.28999…
    ],
)
def test_to_minor_is_exact(amount: Any, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.005", "USD"),
        ("1500.5", "JPY"),
        ("1.0005", "KWD"),
        ("abc", "USD"),
        ("1e3", "USD"),
        ("", "USD"),
        (True, "USD"),
        ("1.00", "US"),
        ("NaN", "USD"),
        ("1,00", "EUR"),
    ],
)
def test_what_is_not_an_exact_amount_is_a_mapping_error(amount: Any, currency: str) -> None:
    with pytest.raises(MappingError):
        to_minor(amount, currency)


def test_from_major_keeps_the_currency_places() -> None:
    assert from_major("29.3", "USD") == Decimal("29.30")
    assert str(from_major("29.3", "USD")) == "29.30"
    assert from_major("1500.00", "JPY") == 1500
    assert isinstance(from_major("1500.00", "JPY"), int)


def test_major_in_an_expression_gives_moneys_amounts() -> None:
    major = compile_value("major(total, currency)")
    money = compile_value("money(`2935`, currency)")
    assert major.search({"total": "29.35", "currency": "USD"}) == money.search({"currency": "USD"})
    assert major.search({"total": None, "currency": "USD"}) is None
    with pytest.raises(MappingError):
        major.search({"total": "1.00", "currency": None})


def test_minor_lets_arithmetic_stay_in_integers() -> None:
    revenue = compile_value(
        "money(subtract(subtract(minor(total, currency), minor(total_tax, currency)),"
        " minor(shipping_total, currency)), currency)"
    )
    order = {"total": "29.35", "total_tax": "1.35", "shipping_total": "10.00", "currency": "USD"}
    assert revenue.search(order) == 18  # 2935 - 135 - 1000 = 1800 cents
    assert compile_value("minor(x, 'JPY')").search({"x": "1500"}) == 1500
