"""quickstart: a tiny inventory and pricing library with a command line.

It is the sample application of sluice's quickstart pipeline
(``examples/quickstart/sluice.yaml``): linted, tested with coverage,
scanned, and packaged as a zipapp by sluice stages.
"""

__version__ = "0.3.0"

from quickstart.inventory import Inventory, InventoryError, Item
from quickstart.pricing import bulk_discount_pct, format_money, line_total, with_tax

__all__ = [
    "Inventory",
    "InventoryError",
    "Item",
    "bulk_discount_pct",
    "format_money",
    "line_total",
    "with_tax",
    "__version__",
]
