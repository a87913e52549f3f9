import pytest

from quickstart.cli import main

CSV = """sku,name,unit_price,quantity
A-100,Espresso beans 1kg,18.90,42
B-310,Ceramic cup,7.50,4
"""


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text(CSV, encoding="utf-8")
    return str(path)


def test_value(csv_file, capsys):
    assert main(["value", csv_file]) == 0
    assert capsys.readouterr().out == "2 items worth 823.80 EUR\n"


def test_low(csv_file, capsys):
    assert main(["low", csv_file, "--threshold", "10"]) == 0
    assert capsys.readouterr().out == "B-310\t4\tCeramic cup\n"


def test_quote_with_tax(csv_file, capsys):
    # 20 x 18.90 = 378.00, -5% = 359.10, +19% = 427.33
    assert main(["quote", csv_file, "A-100", "20", "--tax", "19"]) == 0
    assert capsys.readouterr().out == "20 x Espresso beans 1kg: 427.33 EUR\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quote", "{csv}", "A-100", "50"], "only 42 in stock"),
        (["quote", "{csv}", "Z-1", "1"], "unknown SKU"),
        (["value", "missing.csv"], "No such file"),
    ],
)
def test_errors_exit_1(csv_file, capsys, args, message):
    assert main([a.replace("{csv}", csv_file) for a in args]) == 1
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(csv_file):
    with pytest.raises(SystemExit) as exc:
        main(["quote", csv_file, "A-100", "1", "--tax", "lots"])
    assert exc.value.code == 2
