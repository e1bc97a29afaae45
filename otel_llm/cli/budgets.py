"""`otel-llm budgets render`: delegates to otel_llm.cli.budget_rules.main (render or --check the budget rules)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv or [])
    if args[:1] != ["render"]:
        parser = argparse.ArgumentParser(prog="otel-llm budgets", description=__doc__)
        parser.add_argument("action", choices=["render"], help="render prometheus/budgets.yaml into rules")
        parser.parse_args(args)  # --help exits 0; anything else exits 2
    from . import budget_rules

    default = Path("prometheus/budgets.yaml")
    if not any(arg == "--budgets" or arg.startswith("--budgets=") for arg in args) and not default.exists():
        # Outside a checkout of the stack there is no budgets file to find: say where one comes from.
        from .assets import AssetMissing, asset

        try:
            example = f"; start from the example: cp {asset(str(default))} budgets.yaml"
        except AssetMissing:
            example = ""
        print(f"otel-llm budgets render: error: no {default} in {Path.cwd()}: pass --budgets FILE "
              f"(and --out RULES.yml){example}", file=sys.stderr)
        return 2
    try:
        return int(budget_rules.main(args[1:]) or 0)
    except OSError as exc:  # e.g. --out in a directory that does not exist
        print(f"otel-llm budgets render: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
