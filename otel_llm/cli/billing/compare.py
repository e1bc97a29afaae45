"""Billed vs recorded, per day and model: the difference, its share, and the likely cause. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Final

from . import Figures, Line, total

__all__ = ["CAUSES", "Row", "compare", "summarise"]

# Likely cause of a row's difference, from what matches and what does not.
CAUSES: Final = {
    "ok": "matches",
    "not_recorded": "billed, never recorded: uninstrumented traffic, or a model the telemetry names otherwise",
    "no_telemetry": ("billed, and no instrumented process reported that day: the telemetry did not reach Prometheus "
                     "(app down, pipeline broken, wrong --prometheus), or all of it was uninstrumented"),
    "tokens_missing": "tokens missing: uninstrumented traffic or unmetered streams",
    "tokens_extra": "more tokens recorded than billed: double instrumentation, or a bill not settled yet",
    "cache": "cached tokens differ: cache arithmetic",
    "prices": "tokens match but cost does not: prices (stale, negotiated, discounted or a gateway's own)",
    "not_billed": "recorded, never billed: another provider's traffic, or a bill not settled yet",
    "cost_only": "cost differs; the bill gives no tokens to tell why",
}


@dataclass(frozen=True)
class Row:
    date: str
    model: str
    billed: Figures
    recorded: Figures
    unmetered_calls: float
    cause: str

    @property
    def difference_usd(self) -> float:
        return (self.billed.cost_usd or 0.0) - (self.recorded.cost_usd or 0.0)

    @property
    def difference_share(self) -> float | None:
        """The share of the billed spend the telemetry did not record (negative: recorded more)."""
        billed = self.billed.cost_usd or 0.0
        return self.difference_usd / billed if billed else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "model": self.model,
            "billed_cost_usd": self.billed.cost_usd,
            "recorded_cost_usd": self.recorded.cost_usd or 0.0,
            "difference_usd": self.difference_usd,
            "difference_share": self.difference_share,
            **{f"billed_{name}": getattr(self.billed, name) for name in _TOKENS},
            **{f"recorded_{name}": getattr(self.recorded, name) or 0.0 for name in _TOKENS},
            "unmetered_calls": self.unmetered_calls,
            "cause": self.cause,
            "cause_text": CAUSES[self.cause],
        }


_TOKENS: Final = ("input_tokens", "output_tokens", "cache_read_tokens", "requests")


def compare(billed: list[Line], recorded: list[Line], unmetered: Mapping[tuple[str, str], float],
            tolerance: float = 0.005, silent: AbstractSet[str] = frozenset()) -> list[Row]:
    """One row per (date, model) seen on either side, sorted by date then model. `silent`: the dates on
    which no instrumented process reported (recorded.silent_days)."""
    bill, ours = total(billed), total(recorded)
    rows = []
    for key in sorted(set(bill) | set(ours)):
        date, model = key
        b, r = bill.get(key, Figures()), ours.get(key, Figures())
        extra = unmetered.get((date, model), 0.0)
        rows.append(Row(date, model, b, r, extra, _cause(b, r, extra, tolerance, date in silent)))
    return rows


def _close(ours: float | None, theirs: float | None, tolerance: float) -> bool:
    a, b = ours or 0.0, theirs or 0.0
    return abs(a - b) <= tolerance * max(abs(a), abs(b)) + 1e-9


def _cause(b: Figures, r: Figures, unmetered: float, tol: float, silent: bool = False) -> str:
    billed_tokens = (b.input_tokens or 0.0) + (b.output_tokens or 0.0)
    recorded_tokens = (r.input_tokens or 0.0) + (r.output_tokens or 0.0)
    cost_ok = _close(r.cost_usd, b.cost_usd, tol)
    if not b.cost_usd and not billed_tokens:
        return "ok" if not (r.cost_usd or recorded_tokens) else "not_billed"
    if not (r.cost_usd or recorded_tokens):
        if unmetered:
            return "tokens_missing"
        return "no_telemetry" if silent else "not_recorded"
    if not b.has_tokens:
        return "ok" if cost_ok else "cost_only"
    if (r.input_tokens or 0) < (b.input_tokens or 0) * (1 - tol) or (r.output_tokens or 0) < (b.output_tokens or 0) * (1 - tol):
        return "tokens_missing"
    if not (_close(r.input_tokens, b.input_tokens, tol) and _close(r.output_tokens, b.output_tokens, tol)):
        return "tokens_extra"
    if b.cache_read_tokens is not None and not _close(r.cache_read_tokens, b.cache_read_tokens, tol):
        return "cache"
    return "ok" if cost_ok else "prices"


def summarise(rows: list[Row], top: int = 5) -> dict[str, Any]:
    """Totals, the share the telemetry explains, per-day and per-model totals, and the rows that
    explain most of the difference."""
    billed = sum(row.billed.cost_usd or 0.0 for row in rows)
    recorded = sum(row.recorded.cost_usd or 0.0 for row in rows)
    difference = billed - recorded
    by_day: dict[str, list[float]] = {}
    by_model: dict[str, list[float]] = {}
    for row in rows:
        for table, key in ((by_day, row.date), (by_model, row.model)):
            sums = table.setdefault(key, [0.0, 0.0])
            sums[0] += row.billed.cost_usd or 0.0
            sums[1] += row.recorded.cost_usd or 0.0
    explaining = sorted((row for row in rows if row.cause != "ok"), key=lambda row: -abs(row.difference_usd))[:top]
    return {
        "billed_cost_usd": billed,
        "recorded_cost_usd": recorded,
        "difference_usd": difference,
        "explained_share": recorded / billed if billed else None,
        "by_day": {day: _pair(sums) for day, sums in sorted(by_day.items())},
        "by_model": {model: _pair(sums) for model, sums in sorted(by_model.items(), key=lambda kv: -kv[1][0])},
        "largest_differences": [
            {"date": row.date, "model": row.model, "difference_usd": row.difference_usd,
             "share_of_difference": row.difference_usd / difference if difference else None,
             "cause": row.cause, "cause_text": CAUSES[row.cause]}
            for row in explaining
        ],
    }


def _pair(sums: list[float]) -> dict[str, Any]:
    billed, recorded = sums
    return {"billed_cost_usd": billed, "recorded_cost_usd": recorded,
            "explained_share": recorded / billed if billed else None}
