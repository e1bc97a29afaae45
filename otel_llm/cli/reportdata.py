"""The report's figures: periods in a time zone, the queries for them (cli/queries.py), and the pure
step from query results to a JSON-ready report dict that the text, HTML, CSV, FOCUS and digest
outputs all render.

A period's raw counters are queried once each, grouped by every label the report needs, and summed
in Python (`summarise`), so every table of a period adds up to the same total. Unpriced calls have no
cost sample: they are counted beside the spend, never folded into it as $0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from .queries import (
    LABELS,
    METRICS,
    TOOL_FEE_MISSING,
    Prometheus,
    Sample,
    budget_query,
    exact_growth,
    join_matchers,
    kept_from,
    restart_pairs,
    restarts,
)

__all__ = [
    "DIMENSIONS",
    "Period",
    "budgets_from",
    "build",
    "chargeback_rows",
    "collect",
    "daily_periods",
    "forecast",
    "month_elapsed_ratio",
    "month_start",
    "report_periods",
    "retention_warning",
    "summarise",
    "warnings",
]

# Ranked tables of the report, in the order they are shown.
DIMENSIONS = ("model", "user", "team", "api_key", "feature")
_ROW_LABELS = [LABELS[d] for d in ("model", "provider", "user", "team", "api_key", "feature")]
# Query key -> (metric key, labels to group by, extra selector). One query per key and period.
PERIOD_QUERIES: Mapping[str, tuple[str, list[str], str]] = {
    "cost": ("cost", [*_ROW_LABELS, LABELS["prompt_size"]], ""),
    "tokens": ("tokens", [*_ROW_LABELS, LABELS["token_type"]], ""),
    "savings": ("savings", [LABELS["model"], LABELS["cache_kind"]], ""),
    "response_cache": ("response_cache", [LABELS["model"], LABELS["cache_result"]], ""),
    "calls": ("calls", [LABELS["model"], LABELS["error_type"]], ""),
    "unpriced": ("unpriced", [LABELS["model"]], ""),
    "unmetered": ("unmetered", [LABELS["model"]], ""),
    "unpriced_tool_runs": ("hosted_tools", [LABELS["model"]], TOOL_FEE_MISSING),
    "attempts": ("attempts", [LABELS["model"], LABELS["status_class"]], ""),
    "reference": ("cost_reference", [LABELS["prompt_size"], LABELS["reference_model"]], ""),
}
DAY_QUERIES = ("cost", "tokens", "unpriced")
NONE = "(none)"
Raw = dict[str, list[Sample]]


@dataclass(frozen=True)
class Period:
    """(start, end] in UTC, with the key and label the outputs show."""

    key: str
    label: str
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def month_elapsed_ratio(month: Period, tz: tzinfo) -> float:
    """How much of the calendar month (in `tz`) that `month` starts has passed at its end: 1.0 for
    a whole month (a report of the last day, read on the 1st), never 0 for it."""
    start = month.start.astimezone(tz)
    return (month.end - month.start).total_seconds() / (_next_month(start) - start).total_seconds()


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def report_periods(kind: str, now: datetime, tz: tzinfo) -> tuple[Period, Period]:
    """The report's day and its month to date. `kind`: "yesterday", "today", "24h" or YYYY-MM-DD."""
    local_now = now.astimezone(tz)
    if kind == "24h":
        day = Period("last_24h", "last 24 hours", now - timedelta(hours=24), now)
        end_local = local_now
    else:
        chosen = {"yesterday": local_now.date() - timedelta(days=1), "today": local_now.date()}.get(kind)
        try:
            chosen = chosen or date.fromisoformat(kind)
        except ValueError:
            raise ValueError(f"--period {kind!r}: use yesterday, today, 24h or a date YYYY-MM-DD") from None
        start_local = _midnight(chosen, tz)
        end_local = min(_midnight(chosen + timedelta(days=1), tz), local_now)
        if end_local <= start_local:
            raise ValueError(f"{kind}: the day has not started yet in {tz}")
        day = Period("day", chosen.isoformat(), start_local.astimezone(timezone.utc), end_local.astimezone(timezone.utc))
    start = month_start(end_local - timedelta(microseconds=1))
    month = Period("month_to_date", f"{start:%Y-%m} to date", start.astimezone(timezone.utc), day.end)
    return day, month


def daily_periods(month: Period, tz: tzinfo) -> list[Period]:
    """The calendar days (in `tz`) of a month-to-date period, the last one possibly partial."""
    days: list[Period] = []
    current = month.start.astimezone(tz).date()
    while True:
        start = _midnight(current, tz).astimezone(timezone.utc)
        if start >= month.end:
            return days
        end = min(_midnight(current + timedelta(days=1), tz).astimezone(timezone.utc), month.end)
        days.append(Period(f"day:{current.isoformat()}", current.isoformat(), start, end))
        current += timedelta(days=1)


def collect(prometheus: Prometheus, periods: Sequence[Period], days: Sequence[Period] = (),
            keys: Sequence[str] = tuple(PERIOD_QUERIES), where: str = "") -> dict[str, Raw]:
    """Run the growth queries for every period (and the cost/tokens/unpriced ones for every day), every
    series narrowed by the label matchers `where` (`--match`, e.g. one deployment environment)."""
    raw: dict[str, Raw] = {}
    spans = [*((p, keys) for p in periods), *((d, DAY_QUERIES) for d in days)]
    if not spans:
        return raw
    # Restarts under the same id, read once over every period (queries.restart_pairs), cut per period.
    pairs = restart_pairs(prometheus, min(p.start for p, _ in spans), max(p.end for p, _ in spans))
    for period, wanted in spans:
        restarted = restarts(prometheus, period.start, period.end, pairs)
        raw[period.key] = {key: _run(prometheus, key, period, restarted, where) for key in wanted}
    return raw


def _run(prometheus: Prometheus, key: str, period: Period,
         restarted: Mapping[tuple[str, str], Sequence[datetime]], where: str) -> list[Sample]:
    metric, by, matcher = PERIOD_QUERIES[key]
    return exact_growth(prometheus, METRICS[metric], period.start, period.end, by, join_matchers(matcher, where),
                        restarted)


def budgets_from(prometheus: Prometheus) -> dict[str, float | None]:
    """The global budgets as the alert rules see them now, or None where none is rendered."""
    return {period: prometheus.scalar(budget_query(period)) for period in ("daily", "monthly")}


# --- pure summaries ------------------------------------------------------------------------------

def _name(labels: Mapping[str, str], dim: str) -> str:
    return labels.get(LABELS[dim]) or NONE


def _tables(raw: Raw) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, dict[str, dict[str, float]]] = {d: defaultdict(lambda: defaultdict(float)) for d in DIMENSIONS}
    for labels, value in raw.get("cost", []):
        for dim in DIMENSIONS:
            by[dim][_name(labels, dim)]["spend_usd"] += value
    for labels, value in raw.get("tokens", []):
        kind = labels.get(LABELS["token_type"], "?")
        for dim in DIMENSIONS:
            by[dim][_name(labels, dim)][f"{kind}_tokens"] += value
    for labels, value in raw.get("unpriced", []):
        by["model"][_name(labels, "model")]["unpriced_calls"] += value
    return {
        dim: sorted(({"name": name, "spend_usd": row.get("spend_usd", 0.0),
                      "input_tokens": row.get("input_tokens", 0.0), "output_tokens": row.get("output_tokens", 0.0),
                      "cache_read_tokens": row.get("cache_read_tokens", 0.0),
                      "unpriced_calls": row.get("unpriced_calls", 0.0)} for name, row in rows.items()),
                    key=lambda row: (-float(row["spend_usd"]), str(row["name"])))
        for dim, rows in by.items()
    }


def _sum_by(samples: Sequence[Sample], label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples:
        out[labels.get(label) or NONE] += value
    return dict(sorted(out.items()))


def _caches(raw: Raw, tokens: Mapping[str, float]) -> dict[str, Any]:
    """Both caches: the provider's prompt cache and otel_llm's response cache."""
    savings = _sum_by(raw.get("savings", []), LABELS["cache_kind"])
    lookups = {"hit": 0.0, "miss": 0.0, "error": 0.0} | _sum_by(raw.get("response_cache", []), LABELS["cache_result"])
    looked_up = sum(lookups.values())
    input_tokens = tokens.get("input", 0.0)
    return {
        "cache_hit_ratio": tokens.get("cache_read", 0.0) / input_tokens if input_tokens else None,
        "cache_savings_usd": savings.get("prompt", 0.0),
        "response_cache_requests": lookups,
        "response_cache_hit_ratio": lookups["hit"] / looked_up if looked_up else None,
        "response_cache_savings_usd": savings.get("response", 0.0),
    }


def _routing(raw: Raw) -> list[dict[str, Any]]:
    """Spend by prompt size beside what the reference model would have cost for the same calls."""
    spend = _sum_by(raw.get("cost", []), LABELS["prompt_size"])
    reference = _sum_by(raw.get("reference", []), LABELS["prompt_size"])
    models = sorted({labels.get(LABELS["reference_model"], "") for labels, _ in raw.get("reference", [])} - {""})
    order = {"small": 0, "medium": 1, "large": 2}
    return [{"prompt_size": size, "spend_usd": spend.get(size, 0.0),
             "reference_usd": reference.get(size), "reference_model": ", ".join(models) or None,
             "would_save_usd": spend.get(size, 0.0) - reference[size] if size in reference else None}
            for size in sorted(set(spend) | set(reference), key=lambda s: (order.get(s, 9), s))]


def _reliability(raw: Raw) -> list[dict[str, Any]]:
    """Calls, failed calls (by error type) and HTTP 429 answers, per model."""
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0.0, "errors": 0.0, "error_types": {},
                                                           "http_429": 0.0})
    for labels, value in raw.get("calls", []):
        row = rows[_name(labels, "model")]
        row["calls"] += value
        if kind := labels.get(LABELS["error_type"]):
            row["errors"] += value
            row["error_types"][kind] = row["error_types"].get(kind, 0.0) + value
    for labels, value in raw.get("attempts", []):
        if labels.get(LABELS["status_class"]) == "429":
            rows[_name(labels, "model")]["http_429"] += value
    return [{"model": model, **row} for model, row in sorted(rows.items(), key=lambda kv: (-kv[1]["calls"], kv[0]))]


def summarise(raw: Raw, top: int = 5) -> dict[str, Any]:
    """Pure: one period's figures from its query results."""
    tokens = _sum_by(raw.get("tokens", []), LABELS["token_type"])
    tables = _tables(raw)
    unpriced = _sum_by(raw.get("unpriced", []), LABELS["model"])
    unmetered = _sum_by(raw.get("unmetered", []), LABELS["model"])
    tools = _sum_by(raw.get("unpriced_tool_runs", []), LABELS["model"])
    return {
        "spend_usd": sum(value for _, value in raw.get("cost", [])),
        "tokens": tokens,
        "calls": sum(value for _, value in raw.get("calls", [])),
        "unpriced_calls": sum(unpriced.values()),
        "unpriced_by_model": unpriced,
        "unmetered_calls": sum(unmetered.values()),
        "unmetered_by_model": unmetered,
        # Runs of tools the provider hosts whose fee is not in the spend (code interpreter, image generation, ...).
        "unpriced_tool_runs": sum(tools.values()),
        "unpriced_tool_runs_by_model": tools,
        **_caches(raw, tokens),
        "routing": _routing(raw),
        "reliability": _reliability(raw),
        "by": tables,
        "top_spenders": tables["user"][:top],
    }


def chargeback_rows(day: Period, raw: Raw) -> list[dict[str, Any]]:
    """Pure: one row per day and label set (model, provider, user, team, key, feature): cost, tokens."""
    rows: dict[tuple[str, ...], dict[str, Any]] = {}

    def row(labels: Mapping[str, str]) -> dict[str, Any]:
        key = tuple(labels.get(label, "") for label in _ROW_LABELS)
        if key not in rows:
            rows[key] = {"date": day.label, "start": day.start.isoformat(), "end": day.end.isoformat(),
                         **{dim: value for dim, value in zip(("model", "provider", "user", "team", "api_key",
                                                              "feature"), key, strict=True)},
                         "cost_usd": 0.0, "priced": True, "input_tokens": 0.0, "output_tokens": 0.0,
                         "cache_read_tokens": 0.0}
        return rows[key]

    for labels, value in raw.get("cost", []):
        row(labels)["cost_usd"] += value
    for labels, value in raw.get("tokens", []):
        kind = labels.get(LABELS["token_type"], "")
        if kind in ("input", "output", "cache_read"):
            row(labels)[f"{kind}_tokens"] += value
    unpriced_models = {labels.get(LABELS["model"], "") for labels, value in raw.get("unpriced", []) if value > 0}
    for entry in rows.values():
        # A model with unpriced calls that day: its cost is a lower bound, never a silent $0.
        entry["priced"] = entry["model"] not in unpriced_models
    return sorted(rows.values(), key=lambda r: (r["date"], -r["cost_usd"], r["model"], r["user"], r["team"],
                                                r["api_key"], r["feature"]))


def build(raw: Mapping[str, Raw], periods: Sequence[Period], days: Sequence[Period], now: datetime, tz: tzinfo,
          budgets: Mapping[str, float | None], top: int = 5,
          budget_source: str = "", retention: str | None = None,
          seen: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Pure: the report dict from the query results of `periods` (the day, then the month to date).
    `retention`: how long the Prometheus read keeps samples (`Prometheus.retention()`); a period that
    starts before the oldest it keeps is flagged `beyond_retention` (see `retention_warning`). `seen`:
    per period key, the instrumented processes that reported in it (`queries.processes_seen`)."""
    day, month = periods
    kept = kept_from(retention, now)
    report: dict[str, Any] = {
        "generated_at": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "timezone": str(tz),
        "periods": [{"key": p.key, "label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()}
                    for p in periods],
        "retention": {"setting": retention, "kept_from": kept.isoformat(timespec="seconds") if kept else None},
    }
    for period in periods:
        report[period.key] = summarise(raw.get(period.key, {}), top)
        report[period.key]["beyond_retention"] = kept is not None and period.start < kept
        report[period.key]["processes_seen"] = None if seen is None else seen.get(period.key)
    report["days"] = [_day_point(d, raw.get(d.key, {})) for d in days]
    report["chargeback"] = [r for d in days for r in chargeback_rows(d, raw.get(d.key, {}))]
    report["forecast"] = forecast(report[day.key]["spend_usd"], report[month.key]["spend_usd"],
                                  month_elapsed_ratio(month, tz), budgets)
    report["forecast"]["budget_source"] = budget_source
    report["forecast"]["beyond_retention"] = report[month.key]["beyond_retention"]
    return report


def warnings(report: Mapping[str, Any]) -> list[str]:
    """Pure: what the report must say beside its figures, lest a figure read as exact when it is not."""
    return [w for w in (_silence_warning(report), retention_warning(report)) if w]


def _silence_warning(report: Mapping[str, Any]) -> str | None:
    """A period in which no instrumented process reported and no call is recorded: its $0 is not a
    measured zero (the app was down, or its telemetry never reached this Prometheus)."""
    silent = [p["label"] for p in report["periods"]
              if report.get(p["key"], {}).get("processes_seen") == 0 and not report[p["key"]]["calls"]]
    if not silent:
        return None
    url = report.get("prometheus")
    return (f"No instrumented process reported to {url or 'this Prometheus'} in {' or '.join(silent)}, so $0 there is "
            f"not a measured zero: the app was down, or its telemetry does not reach this Prometheus (otel-llm "
            f"doctor --prometheus {url or 'URL'}).")


def retention_warning(report: Mapping[str, Any]) -> str | None:
    """Pure: what the report says when a period starts before the oldest sample Prometheus keeps. Its
    samples before then are deleted, so a series running across that moment reads as born in the
    period (counted whole) and one that ended before it is gone: no figure of it can be exact."""
    flagged = [p["label"] for p in report["periods"] if report.get(p["key"], {}).get("beyond_retention")]
    if not flagged:
        return None
    kept = report["retention"]
    since = datetime.fromisoformat(kept["kept_from"]).astimezone(timezone.utc)
    return (f"Not exact: {' and '.join(flagged)} start before the oldest samples Prometheus keeps (retention "
            f"{kept['setting']}: from {since:%Y-%m-%d %H:%M} UTC), so spend before then is missing or misread, and "
            "so is the forecast. Keep more than a month (--storage.tsdb.retention.time=45d, as compose.yaml does).")


def _day_point(day: Period, raw: Raw) -> dict[str, Any]:
    return {"date": day.label, "spend_usd": sum(v for _, v in raw.get("cost", [])),
            "unpriced_calls": sum(v for _, v in raw.get("unpriced", []))}


def forecast(day_spend: float, month_spend: float, elapsed: float,
             budgets: Mapping[str, float | None]) -> dict[str, Any]:
    """Month-end projection (month-to-date spend over the elapsed share of the month) and budget flags."""
    projected = month_spend / elapsed if elapsed > 0 else 0.0
    out: dict[str, Any] = {"month_elapsed_ratio": elapsed, "projected_month_end_usd": projected,
                           "budget_daily_usd": budgets.get("daily"), "budget_monthly_usd": budgets.get("monthly")}
    monthly, daily = budgets.get("monthly"), budgets.get("daily")
    if monthly is not None:
        out["projected_budget_ratio"] = projected / monthly
        out["over_monthly_budget"] = projected > monthly
    if daily is not None:
        out["daily_budget_ratio"] = day_spend / daily
        out["over_daily_budget"] = day_spend >= daily
    return out

