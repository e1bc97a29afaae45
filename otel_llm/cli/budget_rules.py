"""Render the user-edited budgets file into a Prometheus rules file of constant budget series.

`prometheus/budgets.yaml` is the one place where budgets live. Prometheus cannot read YAML data,
so each budget becomes a recording rule `otel_llm:budget_usd:{daily,monthly}` whose labels match
the spend series of the same scope (`scope:otel_llm_cost_usd:*`), which lets the alert rules
divide spend by budget with plain one-to-one vector matching. The module is pure: no environment,
no network; `main()` is what `otel-llm budgets render` calls.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Budget", "BudgetError", "load", "main", "parse", "render_file", "render_rules", "validate_usd"]

PERIODS: Final = ("daily", "monthly")
# budgets.yaml section -> (scope label value, Prometheus label that identifies the budget holder)
SECTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "users": ("user", "user_id"),
    "teams": ("team", "otel_llm_team"),
    "api_keys": ("api_key", "otel_llm_api_key_fingerprint"),
}
GROUP_NAME: Final = "otel_llm_budgets"
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{12}")
HEADER: Final = (
    "# GENERATED from {source} by `otel-llm budgets render` (otel_llm/budgets.py). Do not edit:\n"
    "# edit the budgets file and render again; a test checks that this file is fresh.\n"
)


class BudgetError(ValueError):
    """The budgets file is malformed; the message names the file and the offending key."""


@dataclass(frozen=True, order=True)
class Budget:
    """One budget: `usd` per `period` for the holder `holder` of a scope ("global" has none)."""

    scope: str
    holder: str
    period: str
    usd: float


def load(path: Path) -> tuple[Budget, ...]:
    """Read and validate a budgets file."""
    import yaml  # the `cli` extra's: validating a figure (`validate_usd`) needs no YAML

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BudgetError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise BudgetError(f"{path}: not valid YAML: {exc}") from exc
    return parse(data, str(path))


def parse(data: object, source: str) -> tuple[Budget, ...]:
    """Validate parsed YAML; every error names `source` and the dotted key path."""
    if data is None:
        return ()
    top = _mapping(data, source, "(top level)")
    budgets: list[Budget] = []
    for key, value in top.items():
        if key == "global":
            budgets += _periods(value, source, "global", "global", "")
        elif key in SECTIONS:
            scope, _label = SECTIONS[key]
            for holder, periods in _mapping(value, source, key).items():
                _check_holder(key, holder, source)
                budgets += _periods(periods, source, f"{key}.{holder}", scope, holder)
        else:
            allowed = ", ".join(["global", *SECTIONS])
            raise BudgetError(f"{source}: {key}: unknown section (allowed: {allowed})")
    return tuple(sorted(budgets))


def _mapping(value: object, source: str, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BudgetError(f"{source}: {where}: must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise BudgetError(f"{source}: {where}: keys must be non-empty strings, got {key!r}")
    return value


def _check_holder(section: str, holder: str, source: str) -> None:
    # A fingerprint that can never match a series is a budget that silently never alerts.
    if section == "api_keys" and not _FINGERPRINT.fullmatch(holder):
        raise BudgetError(
            f"{source}: api_keys.{holder}: must be a 12-hex-digit key fingerprint "
            "(otel_llm_api_key_fingerprint), not the key itself"
        )


def _periods(value: object, source: str, where: str, scope: str, holder: str) -> list[Budget]:
    periods = _mapping(value, source, where)
    if not periods:
        raise BudgetError(f"{source}: {where}: names no budget (set daily and/or monthly)")
    out = []
    for period, amount in periods.items():
        if period not in PERIODS:
            raise BudgetError(f"{source}: {where}.{period}: unknown period (allowed: daily, monthly)")
        out.append(Budget(scope, holder, period, validate_usd(amount, source, f"{where}.{period}")))
    return out


def validate_usd(value: object, source: str, where: str) -> float:
    """A budget amount, or BudgetError naming `source` (the file) and `where` (the key)."""
    # bool is an int in Python; `daily: yes` is a typo, not a budget of $1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{source}: {where}: must be a number of USD, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise BudgetError(f"{source}: {where}: must be a positive finite number of USD, got {value!r}")
    return float(value)


def _number(usd: float) -> str:
    return str(int(usd)) if usd.is_integer() else repr(usd)


def _rule(budget: Budget) -> dict[str, object]:
    labels = {"scope": budget.scope}
    if budget.scope != "global":
        section = next(name for name, (scope, _) in SECTIONS.items() if scope == budget.scope)
        labels[SECTIONS[section][1]] = budget.holder
    return {
        "record": f"otel_llm:budget_usd:{budget.period}",
        "expr": f"vector({_number(budget.usd)})",
        "labels": labels,
    }


def render_rules(budgets: Sequence[Budget], source: str) -> str:
    """The Prometheus rules file (YAML text) for `budgets`; deterministic for a fresh-render test."""
    # Same 1m interval as the cost rules, so budget and spend series share the lookback behaviour.
    import yaml

    doc = {"groups": [{"name": GROUP_NAME, "interval": "1m", "rules": [_rule(b) for b in budgets]}]}
    body = str(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=110))
    return HEADER.format(source=source) + body


def render_file(src: Path, dst: Path, source_name: str | None = None) -> bool:
    """Render `src` into `dst`; returns True when `dst` changed."""
    text = render_rules(load(src), source_name or src.name)
    old = dst.read_text(encoding="utf-8") if dst.exists() else None
    if old == text:
        return False
    dst.write_text(text, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: render (or with --check, verify) the budget rules. Exit 0 ok, 1 stale, 2 bad file."""
    parser = argparse.ArgumentParser(prog="otel-llm budgets render", description=main.__doc__)
    parser.add_argument("--budgets", type=Path, default=Path("prometheus/budgets.yaml"))
    parser.add_argument("--out", type=Path, default=Path("prometheus/rules/budgets.generated.yml"))
    parser.add_argument("--check", action="store_true", help="fail if --out is not a fresh render")
    args = parser.parse_args(argv)
    try:
        if args.check:
            fresh = render_rules(load(args.budgets), args.budgets.name)
            current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
            if fresh != current:
                print(f"{args.out} is stale: run `otel-llm budgets render`", file=sys.stderr)
                return 1
            return 0
        changed = render_file(args.budgets, args.out)
    except BudgetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {'written' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
