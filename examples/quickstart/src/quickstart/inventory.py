"""Stock keeping: items, quantities, and the value of what is on the shelf."""

import csv
import io
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Dict, Iterable, List

from quickstart.pricing import to_cents


class InventoryError(ValueError):
    """An operation the stock cannot satisfy, or a malformed inventory file."""


@dataclass(frozen=True)
class Item:
    """One stock-keeping unit."""

    sku: str
    name: str
    unit_price: Decimal
    quantity: int = 0

    @property
    def value(self) -> Decimal:
        """What the units on the shelf are worth."""
        return to_cents(self.unit_price * self.quantity)


class Inventory:
    """Items by SKU."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: Dict[str, Item] = {}
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, sku: object) -> bool:
        return sku in self._items

    def get(self, sku: str) -> Item:
        """The item with ``sku``; :class:`InventoryError` if there is none."""
        try:
            return self._items[sku]
        except KeyError:
            raise InventoryError(f"unknown SKU {sku!r}") from None

    def add(self, item: Item) -> Item:
        """Add an item; adding a known SKU adds to its quantity."""
        if item.quantity < 0:
            raise InventoryError(f"{item.sku}: quantity must not be negative")
        known = self._items.get(item.sku)
        if known is not None:
            if known.unit_price != item.unit_price:
                raise InventoryError(
                    f"{item.sku}: price {item.unit_price} differs from {known.unit_price}"
                )
            item = replace(known, quantity=known.quantity + item.quantity)
        self._items[item.sku] = item
        return item

    def remove(self, sku: str, quantity: int) -> Item:
        """Take ``quantity`` units of ``sku`` off the shelf."""
        if quantity <= 0:
            raise InventoryError(f"{sku}: quantity to remove must be positive")
        item = self.get(sku)
        if quantity > item.quantity:
            raise InventoryError(
                f"{sku}: cannot remove {quantity}, only {item.quantity} in stock"
            )
        item = replace(item, quantity=item.quantity - quantity)
        self._items[sku] = item
        return item

    def total_value(self) -> Decimal:
        """The value of everything in stock."""
        return sum((item.value for item in self._items.values()), Decimal(0))

    def low_stock(self, threshold: int) -> List[Item]:
        """Items with fewer than ``threshold`` units, fewest first."""
        low = [item for item in self._items.values() if item.quantity < threshold]
        return sorted(low, key=lambda item: (item.quantity, item.sku))

    @classmethod
    def from_csv(cls, text: str) -> "Inventory":
        """Read ``sku,name,unit_price,quantity`` rows (with that header)."""
        reader = csv.DictReader(io.StringIO(text))
        expected = ["sku", "name", "unit_price", "quantity"]
        if reader.fieldnames != expected:
            raise InventoryError(f"header must be {','.join(expected)}")
        inventory = cls()
        for line, row in enumerate(reader, start=2):
            try:
                item = Item(
                    sku=row["sku"].strip(),
                    name=row["name"].strip(),
                    unit_price=Decimal(row["unit_price"]),
                    quantity=int(row["quantity"]),
                )
            except (InvalidOperation, ValueError, TypeError, AttributeError) as exc:
                raise InventoryError(f"line {line}: {exc}") from None
            inventory.add(item)
        return inventory
