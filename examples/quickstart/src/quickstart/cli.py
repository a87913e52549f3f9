"""The ``quickstart`` command: report on an inventory CSV file.

    quickstart value inventory.csv
    quickstart low inventory.csv --threshold 5
    quickstart quote inventory.csv SKU QUANTITY [--tax 19]
"""

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import List, Optional

from quickstart import __version__
from quickstart.inventory import Inventory, InventoryError
from quickstart.pricing import format_money, line_total, with_tax


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"quickstart {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    value = sub.add_parser("value", help="total value of the stock")
    value.add_argument("file", type=Path)

    low = sub.add_parser("low", help="items running low")
    low.add_argument("file", type=Path)
    low.add_argument("--threshold", type=int, default=5)

    quote = sub.add_parser("quote", help="price of buying some units")
    quote.add_argument("file", type=Path)
    quote.add_argument("sku")
    quote.add_argument("quantity", type=int)
    quote.add_argument("--tax", type=_decimal, default=Decimal(0), help="tax rate in percent")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 bad data, 2 usage)."""
    args = build_parser().parse_args(argv)
    try:
        inventory = Inventory.from_csv(args.file.read_text(encoding="utf-8"))
        if args.command == "value":
            print(f"{len(inventory)} items worth {format_money(inventory.total_value())}")
        elif args.command == "low":
            for item in inventory.low_stock(args.threshold):
                print(f"{item.sku}\t{item.quantity}\t{item.name}")
        else:
            item = inventory.get(args.sku)
            if args.quantity > item.quantity:
                raise InventoryError(f"{item.sku}: only {item.quantity} in stock")
            total = with_tax(line_total(item.unit_price, args.quantity), args.tax)
            print(f"{args.quantity} x {item.name}: {format_money(total)}")
    except (OSError, InventoryError, ValueError) as exc:
        print(f"quickstart: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """Entry point for the zipapp and the console script."""
    sys.exit(main())
