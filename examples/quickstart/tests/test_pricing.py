from decimal import Decimal

import pytest

from quickstart.pricing import bulk_discount_pct, format_money, line_total, with_tax


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(0, 0), (1, 0), (19, 0), (20, 5), (99, 5), (100, 10), (5000, 10)],
)
def test_bulk_discount_tiers(quantity, expected):
    assert bulk_discount_pct(quantity) == Decimal(expected)


def test_line_total_applies_discount_and_rounds_half_up():
    # 20 x 1.999 = 39.98, minus 5% = 37.981 -> 37.98
    assert line_total(Decimal("1.999"), 20) == Decimal("37.98")
    # 3 x 0.335 = 1.005 -> 1.01 (half up, not banker's rounding)
    assert line_total(Decimal("0.335"), 3) == Decimal("1.01")


def test_with_tax():
    assert with_tax(Decimal("100.00"), Decimal(19)) == Decimal("119.00")
    assert with_tax(Decimal("9.99"), Decimal("7.7")) == Decimal("10.76")


def test_format_money_groups_thousands():
    assert format_money(Decimal("1234.5")) == "1,234.50 EUR"
    assert format_money(Decimal("0.005"), "USD") == "0.01 USD"


@pytest.mark.parametrize(
    "call",
    [
        lambda: bulk_discount_pct(-1),
        lambda: line_total(Decimal("-1"), 1),
        lambda: with_tax(Decimal(1), Decimal(-5)),
    ],
)
def test_negative_inputs_are_rejected(call):
    with pytest.raises(ValueError, match="must not be negative"):
        call()
