"""Pricing for the quote service, release 1.0.0.

A quote is the unit price of a product times the quantity, less a volume
discount, rounded half-up to cents.
"""

from decimal import ROUND_HALF_UP, Decimal

FEATURED_SKU = "widget"

CATALOG = {
    "widget": {"name": "Widget", "price": Decimal("4.99")},
    "gadget": {"name": "Gadget", "price": Decimal("12.50")},
    "gizmo": {"name": "Gizmo", "price": Decimal("0.35")},
}

# (minimum quantity, discount): the highest tier reached applies.
VOLUME_TIERS = ((1, Decimal("0")), (10, Decimal("0.05")), (100, Decimal("0.12")))

MAX_QTY = 10000
CENT = Decimal("0.01")


class QuoteError(ValueError):
    """A request that cannot be quoted (unknown product, bad quantity)."""


def catalog():
    return [{"sku": s, "name": p["name"], "price": str(p["price"])} for s, p in sorted(CATALOG.items())]


def discount_for(qty):
    rate = Decimal("0")
    for minimum, tier_rate in VOLUME_TIERS:
        if qty >= minimum:
            rate = tier_rate
    return rate


def quote(sku, qty):
    product = CATALOG.get(sku)
    if product is None:
        raise QuoteError("unknown sku {!r}".format(sku))
    if not 1 <= qty <= MAX_QTY:
        raise QuoteError("qty must be between 1 and {}".format(MAX_QTY))
    gross = product["price"] * qty
    rate = discount_for(qty)
    total = (gross * (1 - rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return {
        "sku": sku,
        "qty": qty,
        "unit_price": str(product["price"]),
        "discount": str(rate),
        "total": str(total),
        "currency": "EUR",
    }
