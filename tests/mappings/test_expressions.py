from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest

from bridge.errors import MappingError
from bridge.mappings.expressions import ExpressionError, compile_value, current_lookup


def ev(expr: Any, data: Any = None) -> Any:
    return compile_value(expr).search(data)


def test_paths_and_literals() -> None:
    assert ev("a.b", {"a": {"b": 1}}) == 1
    assert ev("'Order Completed'") == "Order Completed"
    assert ev('`{"x": 1}`') == {"x": 1}
    assert ev(3) == 3
    assert ev(True) is True
    assert ev(None) is None


def test_money_function() -> None:
    assert ev("money(amount, currency)", {"amount": 1999, "currency": "usd"}) == Decimal("19.99")
    assert ev("money(amount, currency)", {"amount": 500, "currency": "JPY"}) == 500
    assert ev("money(amount, currency)", {"currency": "usd"}) is None
    with pytest.raises(MappingError, match="currency is null"):
        ev("money(amount, currency)", {"amount": 1})


def test_text_functions() -> None:
    data = {"s": " Ada@Example.com "}
    assert ev("upper('usd')") == "USD"
    assert ev("lower(trim(s))", data) == "ada@example.com"
    assert ev("upper(missing)", data) is None
    assert ev("sha256(lower(trim(s)))", data) == hashlib.sha256(b"ada@example.com").hexdigest()
    assert ev("concat('github:', id)", {"id": 5}) == "github:5"


def test_time_functions() -> None:
    assert ev("iso8601(`1700000000`)") == "2023-11-14T22:13:20.000Z"
    assert ev("iso8601(`1654012591514`, 'ms')") == "2022-05-31T15:56:31.514Z"
    assert ev("iso8601(t)", {}) is None
    with pytest.raises(MappingError, match="iso8601"):
        ev("iso8601(`1e300`)")
    with pytest.raises(MappingError, match="unit"):
        ev("iso8601(`1`, 'days')")


def test_first_non_empty_skips_empty_values_but_not_zero() -> None:
    data = {"a": None, "b": "", "c": [], "d": 0, "e": "x"}
    assert ev("first_non_empty(a, b, c, d, e)", data) == 0
    assert ev("coalesce(a, b, e)", data) == "x"
    assert ev("coalesce(a, b)", data) is None


def test_arithmetic_propagates_null() -> None:
    assert ev("subtract(`7500`, `2500`)") == 5000
    assert ev("subtract(a, `1`)", {}) is None
    assert ev("multiply(`3`, `1500`)") == 4500
    assert ev("total(`[1, 2, 3]`)") == 6
    assert ev("total(`[1, null]`)") is None
    assert ev("total(`[]`)") is None


def test_identity_function_uses_the_current_lookup() -> None:
    token = current_lookup.set(lambda c: {"cus_1": "u1"}.get(c))
    try:
        assert ev("identity(customer)", {"customer": "cus_1"}) == "u1"
        assert ev("identity(customer)", {"customer": "cus_2"}) is None
    finally:
        current_lookup.reset(token)
    with pytest.raises(MappingError, match="no identity store"):
        ev("identity(customer)", {"customer": "cus_1"})


def test_type_errors_become_mapping_errors() -> None:
    with pytest.raises(MappingError):
        ev("length(a)", {"a": 5})
    with pytest.raises(MappingError):
        ev("upper(a)", {"a": 5})


@pytest.mark.parametrize("bad", ["a.", "foo(", "a[?", "nosuch(a)", "money(a)"])
def test_bad_expressions_fail_to_compile(bad: str) -> None:
    with pytest.raises(ExpressionError):
        compile_value(bad).search({"a": 1})
