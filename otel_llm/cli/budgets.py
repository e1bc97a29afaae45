"""`otel-llm budgets render`: delegates to otel_llm.budgets.main (render or --check the budget rules)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv or [])
    if args[:1] != ["render"]:
        parser = argparse.ArgumentParser(prog="otel-llm budgets", description=__doc__)
        parser.add_argument("action", choices=["render"], help="render prometheus/budgets.yaml into rules")
        parser.parse_args(args)  # --help exits 0; anything else exits 2
    from otel_llm import budgets

    return int(budgets.main(args[1:]) or 0)
