"""``python3 -m quickstart``."""

from quickstart.cli import run

run()
