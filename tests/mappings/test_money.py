"""money(): minor units to exact decimals by ISO 4217 (with Stripe's documented
exceptions); anything it cannot convert exactly is a MappingError, never a number."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bridge import codec
from bridge.errors import MappingError
from bridge.mappings.casetests import compare
from bridge.mappings.expressions import compile_value
from bridge.mappings.money import EXPONENTS, exponent, to_decimal


def ev(expr: str, data: Any = None) -> Any:
    return compile_value(expr).search(data)


def wire(value: object) -> str:
    """The JSON text the collector receives for ``value``."""
    return codec.dumps(value).decode()


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1999, "usd", "19.99"),
        (1999, "USD", "19.99"),
        (1500, "jpy", "1500"),
        (1500, "KRW", "1500"),
        (12345, "kwd", "12.345"),
        (1, "bhd", "0.001"),
        (-250, "eur", "-2.50"),
        (0, "usd", "0.00"),
        (110, "usd", "1.10"),
        ("1999", "usd", "19.99"),
        (1999.0, "usd", "19.99"),
        (Decimal("1999"), "usd", "19.99"),
        (12345, "clf", "1.2345"),  # Chilean unidad de fomento: four decimals (ISO)
    ],
)
def test_minor_units_become_exact_decimals(amount: object, currency: str, text: str) -> None:
    result = to_decimal(amount, currency)
    assert isinstance(result, int if "." not in text else Decimal)
    assert wire(result) == text


@pytest.mark.parametrize(
    "amount",
    [2**53 + 1, 12345678901234567891, 2**64 - 1, -(2**63)],
)
def test_amounts_beyond_2_53_keep_every_digit(amount: int) -> None:
    digits = str(abs(amount))
    sign = "-" if amount < 0 else ""
    assert wire(to_decimal(amount, "usd")) == f"{sign}{digits[:-2]}.{digits[-2:]}"
    assert wire(to_decimal(amount, "jpy")) == str(amount)


@pytest.mark.parametrize("currency", ["jpy\n", "JPY\n", "usd\n", " usd", "usd ", "us", "", "12a"])
def test_a_currency_code_must_be_exactly_three_letters(currency: str) -> None:
    # "jpy\n" matched ^[A-Za-z]{3}$ ($ matches before a final newline) and then, not being
    # "JPY", was divided by 100: 1999 yen were delivered as 19.99.
    with pytest.raises(MappingError, match="three-letter currency code"):
        to_decimal(1999, currency)


@pytest.mark.parametrize("currency", ["XYZ", "abc", "XAU", "XXX", "XTS", "XDR"])
def test_an_unknown_currency_is_a_mapping_error_not_two_decimals(currency: str) -> None:
    with pytest.raises(MappingError, match=f"unknown currency '{currency.upper()}'"):
        to_decimal(1999, currency)


def test_the_table_is_iso_4217() -> None:
    # Spot checks against the ISO 4217 list (List One, 2026-01-01), by hand.
    iso = {
        "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "PYG": 0,
        "XOF": 0, "XAF": 0, "XPF": 0, "BIF": 0, "DJF": 0, "GNF": 0, "KMF": 0, "RWF": 0,
        "UGX": 0, "VUV": 0, "UYI": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3,
        "OMR": 3, "TND": 3, "CLF": 4, "UYW": 4, "HUF": 2, "TWD": 2, "INR": 2, "CNY": 2,
        "XCG": 2, "ZWG": 2, "SLE": 2, "VES": 2, "STN": 2, "MRU": 2,
    }  # fmt: skip
    assert {code: EXPONENTS[code] for code in iso} == iso
    assert len(EXPONENTS) > 150


def test_stripe_exceptions_and_withdrawn_codes() -> None:
    # Stripe: MGA is zero-decimal; ISK stays two-decimal in the API ("100" is 1 króna).
    assert wire(to_decimal(500, "mga")) == "500"
    assert wire(to_decimal(500, "isk")) == "5.00"
    # Withdrawn codes a provider still sends: Stripe's "std" (São Tomé dobra), "ang".
    assert wire(to_decimal(1999, "std")) == "19.99"
    assert wire(to_decimal(1999, "ang")) == "19.99"


def test_exponents() -> None:
    assert (exponent("JPY"), exponent("usd"), exponent("Kwd")) == (0, 2, 3)


@pytest.mark.parametrize(
    "amount", [19.5, "19.99", True, None, [1], "abc", Decimal("1.5"), Decimal("NaN"), 2.0**60]
)
def test_amounts_that_are_not_exact_whole_numbers_are_mapping_errors(amount: object) -> None:
    with pytest.raises(MappingError, match="money"):
        to_decimal(amount, "usd")


def test_money_in_an_expression_is_exact() -> None:
    data = {"a": 1999, "b": 1, "c": "usd", "q": 3, "f": 0.1, "big": 2**60 + 7}
    assert ev("money(a, c)", data) == Decimal("19.99")
    assert wire(ev("money(big, c)", data)) == "11529215046068469.83"
    assert wire(ev("add(money(a, c), money(b, c))", data)) == "20.00"
    assert wire(ev("subtract(money(a, c), money(b, c))", data)) == "19.98"
    assert wire(ev("multiply(money(a, c), q)", data)) == "59.97"
    assert wire(ev("add(money(b, c), f)", data)) == "0.11"  # not 0.11000000000000001
    assert wire(ev("total([money(a, c), money(b, c)])", data)) == "20.00"
    assert wire(ev("sum([money(a, c), money(b, c), f])", data)) == "20.10"
    assert ev("type(money(a, c))", data) == "number"
    assert ev("to_string(money(a, c))", data) == "19.99"
    assert ev("to_number(to_string(money(big, c)))", data) == Decimal("11529215046068469.83")
    assert ev("money(a, c) > `19`", data) is True
    assert ev("max([money(a, c), `5`])", data) == Decimal("19.99")
    assert ev("concat(money(a, c), ' ', upper(c))", data) == "19.99 USD"


def test_comparisons_with_float_literals_are_exact() -> None:
    # The literal `19.99` is a binary float just below 19.99; an amount of exactly 19.99
    # must still be <= it and == it, in plain expressions and inside filters.
    data = {"a": 1999, "c": "usd", "items": [{"amount": 1999}, {"amount": 2000}]}
    assert ev("money(a, c) == `19.99`", data) is True
    assert ev("money(a, c) <= `19.99`", data) is True
    assert ev("money(a, c) > `19.99`", data) is False
    assert ev("length(items[?money(amount, 'usd') <= `19.99`])", data) == 1
    assert ev("length(items[?money(amount, 'usd') == `20.0`])", data) == 1
    assert ev("contains(items[].money(amount, 'usd'), `19.99`)", data) is True


def test_arithmetic_that_cannot_be_exact_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="no exact result"):
        ev("add(to_number('1e400'), `1`)")  # 401 digits


def test_test_cases_compare_yaml_numbers_exactly() -> None:
    # expect: values are YAML floats; a Decimal amount matches the decimal written there.
    assert compare({"total": 19.99}, {"total": Decimal("19.99")}, exact=True) == []
    assert compare({"total": 30}, {"total": Decimal("30.00")}, exact=True) == []
    assert compare({"total": 30.0}, {"total": Decimal("30.00")}, exact=True) == []
    assert compare({"total": 19.98}, {"total": Decimal("19.99")}, exact=True) == [
        "calls.total: expected 19.98, got 19.99"
    ]
    assert compare({"total": 0.3}, {"total": Decimal("0.30000000000000004")}, exact=True)
