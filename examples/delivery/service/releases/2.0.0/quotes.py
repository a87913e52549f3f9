"""Pricing for the quote service, release 2.0.0.

A quote is the unit price of a product times the quantity, less a volume
discount, rounded half-up to cents.

New in 2.0.0: every quote carries a ``quote_id`` token that the checkout
service can redeem within 15 minutes for the quoted price. The token packs
the expiry, a nonce and a checksum of the quote into 12 bytes, base32 encoded.
"""

import base64
import hashlib
import secrets
import struct
import time
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

QUOTE_TTL_SECONDS = 15 * 60
# Five decimal digits, so support staff can read the nonce out over the phone.
NONCE_DIGITS = 5
# expiry (u32 seconds), nonce (u16), checksum (6 bytes of sha256)
TOKEN_LAYOUT = ">IH6s"


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


def quote_token(sku, qty, total, now=None):
    """A redeemable token for this quote: expiry, nonce and checksum."""
    expires = int(now if now is not None else time.time()) + QUOTE_TTL_SECONDS
    nonce = secrets.randbelow(10**NONCE_DIGITS)
    digest = hashlib.sha256("{}:{}:{}:{}".format(sku, qty, total, nonce).encode()).digest()
    packed = struct.pack(TOKEN_LAYOUT, expires, nonce, digest[:6])
    return base64.b32encode(packed).decode().rstrip("=")


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
        "quote_id": quote_token(sku, qty, total),
    }
