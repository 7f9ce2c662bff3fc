from __future__ import annotations

import json

import pytest

from bridge.errors import MappingError
from bridge.mappings.money import exponent, to_decimal


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1999, "usd", 19.99),
        (1999, "USD", 19.99),
        (1500, "jpy", 1500),
        (1500, "KRW", 1500),
        (12345, "kwd", 12.345),
        (1, "bhd", 0.001),
        (-250, "eur", -2.5),
        (0, "usd", 0.0),
        ("1999", "usd", 19.99),
    ],
)
def test_minor_units_become_decimals_by_exponent(
    amount: object, currency: str, expected: float
) -> None:
    assert to_decimal(amount, currency) == expected


def test_result_serialises_exactly() -> None:
    assert json.dumps(
        [to_decimal(1999, "usd"), to_decimal(110, "usd"), to_decimal(12345, "kwd")]
    ) == ("[19.99, 1.1, 12.345]")
    assert all(repr(to_decimal(n, "usd")) == f"{n / 100}" for n in range(0, 100000, 7))


def test_exponents() -> None:
    assert (exponent("JPY"), exponent("usd"), exponent("Kwd")) == (0, 2, 3)


@pytest.mark.parametrize("amount", [19.5, "19.99", True, None, [1], "abc"])
def test_non_integer_amounts_are_mapping_errors(amount: object) -> None:
    with pytest.raises(MappingError, match="money"):
        to_decimal(amount, "usd")


@pytest.mark.parametrize("currency", ["us", "dollars", "", "12a"])
def test_bad_currency_is_a_mapping_error(currency: str) -> None:
    with pytest.raises(MappingError, match="currency code"):
        to_decimal(100, currency)
