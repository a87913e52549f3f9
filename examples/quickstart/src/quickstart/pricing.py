"""Prices: bulk discounts, line totals, tax, and money formatting.

All amounts are :class:`decimal.Decimal` and are rounded to cents with
ROUND_HALF_UP, the way invoices round, never with binary floats.
"""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

# (minimum quantity, discount in percent), largest first.
BULK_TIERS = ((100, Decimal(10)), (20, Decimal(5)))


def to_cents(amount: Decimal) -> Decimal:
    """Round ``amount`` to whole cents, halves up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def bulk_discount_pct(quantity: int) -> Decimal:
    """The discount in percent for buying ``quantity`` units at once."""
    if quantity < 0:
        raise ValueError(f"quantity must not be negative, got {quantity}")
    for minimum, pct in BULK_TIERS:
        if quantity >= minimum:
            return pct
    return Decimal(0)


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    """Price of ``quantity`` units after the bulk discount, in cents."""
    if unit_price < 0:
        raise ValueError(f"unit price must not be negative, got {unit_price}")
    gross = unit_price * quantity
    discount = gross * bulk_discount_pct(quantity) / 100
    return to_cents(gross - discount)


def with_tax(amount: Decimal, rate_pct: Decimal) -> Decimal:
    """``amount`` plus ``rate_pct`` percent tax, in cents."""
    if rate_pct < 0:
        raise ValueError(f"tax rate must not be negative, got {rate_pct}")
    return to_cents(amount * (1 + rate_pct / 100))


def format_money(amount: Decimal, currency: str = "EUR") -> str:
    """``1234.5`` -> ``"1,234.50 EUR"``."""
    return f"{to_cents(amount):,.2f} {currency}"
