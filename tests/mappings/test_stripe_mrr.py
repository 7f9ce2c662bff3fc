"""mrr(): monthly recurring revenue of Stripe subscription items, worked out by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bridge.envelope import Envelope
from bridge.mappings import MemoryIdentityStore, load_text
from bridge.mappings.subscriptions import mrr


def price(unit: Any, interval: str = "month", count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "unit_amount": unit,
        "recurring": {"interval": interval, "interval_count": count},
        **extra,
    }


@pytest.mark.parametrize(
    ("items", "currency", "expected"),
    [
        # 19.00 a month
        ([{"price": price(1900), "quantity": 1}], "usd", Decimal("19.00")),
        # 190.00 a year = 15.8333… a month, rounded half-even to the cent once
        ([{"price": price(19000, "year"), "quantity": 1}], "usd", Decimal("15.83")),
        # 5 seats x 19.00
        ([{"price": price(1900), "quantity": 5}], "usd", Decimal("95.00")),
        # 30.00 every 3 months = 10.00 a month
        ([{"price": price(3000, "month", 3), "quantity": 1}], "eur", Decimal("10.00")),
        # 10.00 a week = 10 x 52 / 12 = 43.333… a month
        ([{"price": price(1000, "week"), "quantity": 1}], "usd", Decimal("43.33")),
        # 1.00 a day = 365 / 12 = 30.4166… a month
        ([{"price": price(100, "day"), "quantity": 1}], "usd", Decimal("30.42")),
        # two items, one yearly: 20.00 + 120.00 / 12 = 30.00
        (
            [{"price": price(2000), "quantity": 1}, {"price": price(12000, "year"), "quantity": 1}],
            "usd",
            Decimal("30.00"),
        ),
        # a fractional unit price (unit_amount_decimal) x 3 = 3.75
        (
            [{"price": price(None, unit_amount_decimal="125.0"), "quantity": 3}],
            "usd",
            Decimal("3.75"),
        ),
        # the legacy plan shape; JPY has no minor unit: 1200 a year = 100 a month
        ([{"plan": {"amount": 1200, "interval": "year"}, "quantity": 1}], "jpy", 100),
        # KWD: three decimals
        ([{"price": price(10000), "quantity": 1}], "kwd", Decimal("10.000")),
        # metered usage has no fixed amount: counts 0
        (
            [
                {"price": price(1900), "quantity": 1},
                {
                    "price": {
                        **price(5),
                        "recurring": {"interval": "month", "usage_type": "metered"},
                    }
                },
            ],
            "usd",
            Decimal("19.00"),
        ),
        # no quantity: 1
        ([{"price": price(1900)}], "usd", Decimal("19.00")),
    ],
)
def test_mrr(items: list[dict[str, Any]], currency: str, expected: Decimal | int) -> None:
    got = mrr(items, currency)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("items", "currency"),
    [
        (
            [
                {
                    "price": {
                        "unit_amount": None,
                        "billing_scheme": "tiered",
                        "recurring": {"interval": "month"},
                    },
                    "quantity": 1,
                }
            ],
            "usd",
        ),  # a tiered price
        ([{"price": price(1900, "fortnight"), "quantity": 1}], "usd"),
        ([{"plan": None, "quantity": 1}], "usd"),
        ([], "usd"),
        (None, "usd"),
        ([{"price": price(1900), "quantity": 1}], None),
    ],
)
def test_mrr_is_null_rather_than_a_guess(items: Any, currency: Any) -> None:
    assert mrr(items, currency) is None


MAPPING = """\
provider: stripe
secrets: s
identity: {customer: data.object.customer}
rules:
  - name: change
    on: customer.subscription.updated
    emit:
      - type: track
        when: "mrr(data.object.items.data, 'usd') > mrr(data.previous_attributes.items.data, 'usd')"
        event: Upgraded
        properties:
          mrr: "mrr(data.object.items.data, 'usd')"
          previous_mrr: "mrr(data.previous_attributes.items.data, 'usd')"
"""


def test_mrr_compares_in_expressions() -> None:
    mapping, problems = load_text(MAPPING, "shop", {})
    assert mapping is not None, problems
    body = {
        "data": {
            "object": {"customer": "c", "items": {"data": [{"price": price(1900), "quantity": 2}]}},
            "previous_attributes": {"items": {"data": [{"price": price(1900), "quantity": 1}]}},
        }
    }
    calls = mapping.evaluate(
        Envelope("shop", "e", "customer.subscription.updated", 1.0, 0.0, body),
        MemoryIdentityStore(),
    )
    assert [c["properties"] for c in calls] == [
        {"mrr": Decimal("38.00"), "previous_mrr": Decimal("19.00")}
    ]
