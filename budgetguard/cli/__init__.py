"""The ``budgetguard`` command line. Each command only wires modules together.

Heavy modules are imported inside the commands, so ``budgetguard --help`` stays fast.
Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable.
"""

from __future__ import annotations

from budgetguard.cli import budgets, operate, silences  # noqa: F401  (each registers its commands)
from budgetguard.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
