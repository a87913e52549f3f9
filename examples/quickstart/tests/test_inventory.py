from decimal import Decimal

import pytest

from quickstart.inventory import Inventory, InventoryError, Item

CSV = """sku,name,unit_price,quantity
A-100,Espresso beans 1kg,18.90,42
B-310,Ceramic cup,7.50,4
B-320,Paper filters (100),3.99,0
"""


@pytest.fixture
def inventory():
    return Inventory.from_csv(CSV)


def test_reads_csv(inventory):
    assert len(inventory) == 3
    assert "A-100" in inventory
    assert inventory.get("B-310") == Item("B-310", "Ceramic cup", Decimal("7.50"), 4)


def test_adding_a_known_sku_adds_quantity(inventory):
    item = inventory.add(Item("B-310", "Ceramic cup", Decimal("7.50"), 6))
    assert item.quantity == 10
    with pytest.raises(InventoryError, match="differs"):
        inventory.add(Item("B-310", "Ceramic cup", Decimal("8.00"), 1))


def test_remove_checks_stock(inventory):
    assert inventory.remove("A-100", 2).quantity == 40
    with pytest.raises(InventoryError, match="only 4 in stock"):
        inventory.remove("B-310", 5)
    with pytest.raises(InventoryError, match="must be positive"):
        inventory.remove("B-310", 0)
    with pytest.raises(InventoryError, match="unknown SKU"):
        inventory.remove("Z-999", 1)


def test_total_value_and_low_stock(inventory):
    # 42 x 18.90 + 4 x 7.50 = 793.80 + 30.00
    assert inventory.total_value() == Decimal("823.80")
    assert [item.sku for item in inventory.low_stock(5)] == ["B-320", "B-310"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sku,name\nA,B\n", "header must be"),
        ("sku,name,unit_price,quantity\nA,B,cheap,1\n", "line 2"),
        ("sku,name,unit_price,quantity\nA,B,1.00,-3\n", "must not be negative"),
    ],
)
def test_bad_csv_is_rejected(text, message):
    with pytest.raises(InventoryError, match=message):
        Inventory.from_csv(text)
