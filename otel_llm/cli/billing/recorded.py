"""What our telemetry recorded, per UTC day and model, read from Prometheus.

Each day's figure is the exact growth of the raw counters over that day, the same as `otel-llm report`
reads (otel_llm/cli/queries.py `exact_growth`: no `increase()`, which extrapolates and misses a new
series' first increment, and a process restarted under the same id added run by run), evaluated at
the day's end, or at the settled horizon for a partial day.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Final, TypeVar

from .. import queries
from . import BillingError, Figures, Line, normalize_model

__all__ = ["METRICS", "fetch", "silent_days"]

MODEL_LABEL: Final = "gen_ai_request_model"
TOKEN_LABEL: Final = "gen_ai_token_type"
METRICS: Final = {
    "cost": "otel_llm_cost_USD_total",
    "tokens": "otel_llm_tokens_total",
    "unmetered": "otel_llm_calls_unmetered_total",
}
_TOKEN_FIELDS: Final = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens"}
Sample = tuple[dict[str, str], float]
_T = TypeVar("_T")


def fetch(prometheus: str, days: Iterable[datetime], horizon: datetime, selector: str = "") -> tuple[list[Line], dict[tuple[str, str], float]]:
    """Recorded lines per day and model, and the calls recorded with no usage (unmetered) per
    (date, model). `days` are UTC midnights; a day is read up to `horizon` at most."""
    client = queries.Prometheus(prometheus, timeout=30.0)
    days = list(days)
    _within_retention(client, days)
    if selector and days:  # a typo would read as traffic that never went through otel_llm: say so instead
        problem = _read(lambda: queries.unmatched(client, selector, days[0], min(days[-1] + timedelta(days=1), horizon)))
        if problem is not None:
            raise BillingError(problem)
    lines: list[Line] = []
    unmetered: dict[tuple[str, str], float] = {}
    for start, end in _windows(days, horizon):
        date = start.strftime("%Y-%m-%d")
        day = _Day(client, start, end, selector)
        by_model: dict[str, Figures] = {}
        for labels, value in day.growth(METRICS["cost"], [MODEL_LABEL]):
            by_model.setdefault(normalize_model(labels.get(MODEL_LABEL, "")), Figures()).add(Figures(cost_usd=value))
        for labels, value in day.growth(METRICS["tokens"], [MODEL_LABEL, TOKEN_LABEL]):
            field = _TOKEN_FIELDS.get(labels.get(TOKEN_LABEL, ""))
            if field:
                figures = Figures(**{field: value})
                by_model.setdefault(normalize_model(labels.get(MODEL_LABEL, "")), Figures()).add(figures)
        for labels, value in day.growth(METRICS["unmetered"], [MODEL_LABEL]):
            key = (date, normalize_model(labels.get(MODEL_LABEL, "")))
            unmetered[key] = unmetered.get(key, 0.0) + value
        lines += [Line(date, model or "(no model)", figures) for model, figures in sorted(by_model.items())]
    return lines, unmetered


def silent_days(prometheus: str, days: Iterable[datetime], horizon: datetime) -> set[str]:
    """The days (YYYY-MM-DD) on which no instrumented process reported to Prometheus at all: each exports
    its start time at every collection, so a billed day among them lost its telemetry, not its calls."""
    client = queries.Prometheus(prometheus, timeout=30.0)
    silent = set()
    for start, end in _windows(days, horizon):
        if _read(lambda: queries.processes_seen(client, start, end)) == 0:  # noqa: B023 - called at once
            silent.add(start.strftime("%Y-%m-%d"))
    return silent


def _windows(days: Iterable[datetime], horizon: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Each UTC day as (start, end], read up to `horizon` at most; a day not begun by then is left out."""
    for start in days:
        end = min(start + timedelta(days=1), horizon)
        if end > start:
            yield start, end


def _within_retention(client: queries.Prometheus, days: list[datetime]) -> None:
    """A day that starts before the oldest sample Prometheus keeps has lost its calls: compared with the
    bill, it would read as traffic outside otel_llm. Refused, naming the setting and the first day kept."""
    retention = client.retention()
    kept = queries.kept_from(retention, datetime.now(timezone.utc))
    lost = [day for day in days if kept is not None and day < kept]
    if lost and kept is not None:
        first = (kept + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        raise BillingError(
            f"{lost[0]:%Y-%m-%d} starts before the oldest samples Prometheus keeps (retention {retention}: from "
            f"{kept:%Y-%m-%d %H:%M} UTC), so its calls can no longer be compared with the bill; reconcile days "
            f"from {first:%Y-%m-%d} on, and keep more than a month (--storage.tsdb.retention.time=45d)"
        )


class _Day:
    """One day's reads: its restarts under the same id read once, then each counter's exact growth."""

    def __init__(self, client: queries.Prometheus, start: datetime, end: datetime, selector: str) -> None:
        self.client, self.start, self.end, self.selector = client, start, end, selector
        self.restarted = _read(lambda: queries.restarts(client, start, end))

    def growth(self, metric: str, by: list[str]) -> list[Sample]:
        found = _read(lambda: queries.exact_growth(self.client, metric, self.start, self.end, by, self.selector,
                                                   self.restarted))
        return [(labels, value) for labels, value in found if math.isfinite(value)]


def _read(ask: Callable[[], _T]) -> _T:
    """One read of Prometheus (all of them go through queries.Prometheus); its errors as BillingError."""
    try:
        return ask()
    except queries.PrometheusError as exc:
        raise BillingError(str(exc)) from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BillingError(f"Prometheus answered an unexpected shape ({exc!r:.80})") from None
