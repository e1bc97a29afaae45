"""`otel-llm report`: the case's daily report and month-end forecast, read from Prometheus.

Queries. Budget figures must be exact, so no `increase()`: it extrapolates, and it never sees the
first increment of a new series (a new user's first call, a fresh process). For a window of W seconds
ending now, each raw counter series contributes

    last_over_time(m[W]) - last_over_time(m[5m] offset W)     (its growth inside the window)
    or last_over_time(m[W])                                   (a series born inside the window
                                                               started from zero: its whole value)

and a negative difference (a counter reset) falls back to the series' last value. Series of exited
processes still count: range vectors skip staleness markers. What this can miss: growth before a
reset inside the window, and a series silent for the 5 minutes before the window start counts whole.
The shipped recording rules (prometheus/rules/cost.rules.yml, `scope:otel_llm_cost_usd:*`) are exact
too but carry no model label and lag one rule evaluation, so the report reads raw counters.

One query per counter and window, grouped by every dimension at once; the by-model/user/team/key
tables are summed in Python by pure functions (build_report, format_text), testable on known data.

Two caches, side by side: the provider's prompt cache (`cache_hit_ratio`: cache_read over input
tokens; `cache_savings_usd`: otel_llm_cache_savings_USD_total{otel_llm_cache_kind="prompt"}) and
otel_llm's own response cache (`response_cache_hit_ratio`: hits over lookups of
otel_llm_response_cache_requests_total; `response_cache_savings_usd`: what the hits would have
cost, otel_llm_cache_savings_USD_total{otel_llm_cache_kind="response"}). A hit's cost is zero and
not in the spend, so the spend plus the response-cache savings is what the traffic would have cost
without that cache.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ._term import colour, error

__all__ = ["DIMENSIONS", "build_report", "exact_query", "fetch", "format_json", "format_text", "main"]

PROG = "otel-llm report"
# Report dimension -> Prometheus label.
DIMENSIONS = {
    "model": "gen_ai_request_model",
    "user": "user_id",
    "team": "otel_llm_team",
    "api_key": "otel_llm_api_key_fingerprint",
}
METRICS = {
    "cost": "otel_llm_cost_USD_total",
    "tokens": "otel_llm_tokens_total",
    "savings": "otel_llm_cache_savings_USD_total",
    "response_cache": "otel_llm_response_cache_requests_total",
}
# Labels each metric is grouped by, besides DIMENSIONS (the response cache counter has only the model).
_EXTRA_LABELS = {"tokens": ["gen_ai_token_type"], "savings": ["otel_llm_cache_kind"]}
_RESPONSE_CACHE_LABELS = ["gen_ai_request_model", "otel_llm_response_cache_result"]
RESPONSE_CACHE_RESULTS = ("hit", "miss", "error")
Sample = tuple[dict[str, str], float]
Raw = dict[str, dict[str, list[Sample]]]  # window -> metric key -> samples


class PrometheusError(RuntimeError):
    pass


def exact_query(metric: str, window_seconds: int, by: Iterable[str]) -> str:
    """The exact growth of `metric` over the window, summed by `by` (see the module docstring)."""
    w = f"{max(int(window_seconds), 1)}s"
    labels = ", ".join(by)
    return (
        f"sum by ({labels}) ("
        f"(last_over_time({metric}[{w}]) - last_over_time({metric}[5m] offset {w})) >= 0"
        f" or last_over_time({metric}[{w}]))"
    )


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_elapsed_ratio(now: datetime) -> float:
    start = month_start(now)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return (now - start).total_seconds() / (end - start).total_seconds()


def query(base_url: str, promql: str, at: datetime | None = None, timeout: float = 10.0) -> list[Sample]:
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise PrometheusError(f"cannot query Prometheus at {base_url}: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus rejected the query: {body.get('error')}")
    return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]


def fetch(base_url: str, now: datetime) -> Raw:
    """Eight queries: cost, tokens, cache savings and response cache lookups over the last 24h and
    the month to date."""
    windows = {"24h": 86400, "month": int((now - month_start(now)).total_seconds())}
    raw: Raw = {}
    for window, seconds in windows.items():
        raw[window] = {key: query(base_url, exact_query(metric, seconds, _labels_of(key)), now)
                       for key, metric in METRICS.items()}
    return raw


def _labels_of(key: str) -> list[str]:
    if key == "response_cache":
        return _RESPONSE_CACHE_LABELS
    return list(DIMENSIONS.values()) + _EXTRA_LABELS.get(key, [])


def _summarise(samples: Mapping[str, list[Sample]], top: int) -> dict[str, Any]:
    tokens_by_type: dict[str, float] = defaultdict(float)
    by: dict[str, dict[str, dict[str, float]]] = {dim: defaultdict(lambda: defaultdict(float)) for dim in DIMENSIONS}
    for labels, value in samples.get("cost", []):
        for dim, label in DIMENSIONS.items():
            by[dim][labels.get(label) or "(none)"]["spend_usd"] += value
    for labels, value in samples.get("tokens", []):
        kind = labels.get("gen_ai_token_type", "?")
        tokens_by_type[kind] += value
        for dim, label in DIMENSIONS.items():
            by[dim][labels.get(label) or "(none)"][f"{kind}_tokens"] += value
    spend = sum(value for _, value in samples.get("cost", []))
    tables = {
        dim: sorted(
            ({"name": name, "spend_usd": row.get("spend_usd", 0.0),
              "input_tokens": row.get("input_tokens", 0.0), "output_tokens": row.get("output_tokens", 0.0),
              "cache_read_tokens": row.get("cache_read_tokens", 0.0)} for name, row in rows.items()),
            key=lambda row: (-float(row["spend_usd"]), str(row["name"])),  # type: ignore[arg-type]
        )
        for dim, rows in by.items()
    }
    input_tokens = tokens_by_type.get("input", 0.0)
    return {
        "spend_usd": spend,
        "tokens": dict(sorted(tokens_by_type.items())),
        "cache_hit_ratio": tokens_by_type.get("cache_read", 0.0) / input_tokens if input_tokens else None,
        **_caches(samples),
        "by": tables,
        "top_spenders": tables["user"][:top],
    }


def _caches(samples: Mapping[str, list[Sample]]) -> dict[str, Any]:
    """Savings of each cache, and the response cache's lookups by result and its hit ratio."""
    savings: dict[str, float] = defaultdict(float)
    for labels, value in samples.get("savings", []):
        savings[labels.get("otel_llm_cache_kind") or "prompt"] += value
    lookups = dict.fromkeys(RESPONSE_CACHE_RESULTS, 0.0)
    for labels, value in samples.get("response_cache", []):
        result = labels.get("otel_llm_response_cache_result") or "error"
        lookups[result] = lookups.get(result, 0.0) + value
    looked_up = sum(lookups.values())
    return {
        "cache_savings_usd": savings["prompt"],
        "response_cache_requests": lookups,
        "response_cache_hit_ratio": lookups["hit"] / looked_up if looked_up else None,
        "response_cache_savings_usd": savings["response"],
    }


def build_report(raw: Raw, now: datetime, budget_daily: float | None, budget_monthly: float | None,
                 top: int = 5) -> dict[str, Any]:
    """Pure: the report as a JSON-ready dict from the query results."""
    day = _summarise(raw.get("24h", {}), top)
    month = _summarise(raw.get("month", {}), top)
    elapsed = month_elapsed_ratio(now)
    projected = month["spend_usd"] / elapsed if elapsed > 0 else 0.0
    forecast: dict[str, Any] = {"month_elapsed_ratio": elapsed, "projected_month_end_usd": projected,
                                "budget_monthly_usd": budget_monthly, "budget_daily_usd": budget_daily}
    if budget_monthly:
        forecast["projected_budget_ratio"] = projected / budget_monthly
        forecast["over_monthly_budget"] = projected > budget_monthly
    if budget_daily:
        forecast["daily_budget_ratio"] = day["spend_usd"] / budget_daily
        forecast["over_daily_budget"] = day["spend_usd"] >= budget_daily
    return {"generated_at": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "last_24h": day, "month_to_date": month, "forecast": forecast}


def format_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def _usd(value: float) -> str:
    return f"${value:,.4f}" if abs(value) < 10 else f"${value:,.2f}"


def _tokens(value: float) -> str:
    return f"{value:,.0f}"


def _section(title: str, summary: Mapping[str, Any], rows: int) -> list[str]:
    tokens = summary["tokens"]
    ratio = summary["cache_hit_ratio"]
    lookups = summary["response_cache_requests"]
    looked_up = sum(lookups.values())
    if summary["response_cache_hit_ratio"] is None:
        response = "response cache: no lookups (off, or no deterministic requests)"
    else:
        response = (f"response cache: hit {summary['response_cache_hit_ratio']:.1%} of "
                    f"{_tokens(looked_up)} lookups, saved {_usd(summary['response_cache_savings_usd'])}")
    lines = [
        title,
        f"  spend {_usd(summary['spend_usd'])}   tokens in {_tokens(tokens.get('input', 0))}"
        f" / out {_tokens(tokens.get('output', 0))}",
        f"  prompt cache: hit {'n/a' if ratio is None else f'{ratio:.1%}'} of input tokens,"
        f" saved {_usd(summary['cache_savings_usd'])}   {response}",
    ]
    for dim, table in summary["by"].items():
        lines.append(f"  by {dim}:")
        for row in table[:rows]:
            lines.append(f"    {row['name']:<24} {_usd(row['spend_usd']):>12}  in {_tokens(row['input_tokens']):>10}"
                         f"  out {_tokens(row['output_tokens']):>9}")
        if len(table) > rows:
            lines.append(f"    ... {len(table) - rows} more")
    return lines


def format_text(report: Mapping[str, Any], rows: int = 8, tty: bool = False) -> str:
    """Pure: the human report. `tty` only decides the colour of the budget flags."""
    forecast = report["forecast"]
    lines = [f"LLM spend report, {report['generated_at']}", ""]
    lines += _section("Last 24 hours", report["last_24h"], rows) + [""]
    lines += _section("Month to date (UTC)", report["month_to_date"], rows) + [""]
    top = ", ".join(f"{row['name']} {_usd(row['spend_usd'])}" for row in report["last_24h"]["top_spenders"])
    lines.append(f"Top spenders (24h): {top or '-'}")
    lines.append(f"Month-end forecast: {_usd(forecast['projected_month_end_usd'])}"
                 f" ({forecast['month_elapsed_ratio']:.1%} of the month elapsed)")
    for period, key in (("monthly", "projected_budget_ratio"), ("daily", "daily_budget_ratio")):
        if key in forecast:
            over = forecast[f"over_{period}_budget"]
            flag = "OVER BUDGET" if over else "within budget"
            if tty:
                flag = f"\033[{'31' if over else '32'}m{flag}\033[0m"
            what = "projected" if period == "monthly" else "24h spend"
            lines.append(f"{period.capitalize()} budget {_usd(forecast[f'budget_{period}_usd'])}: "
                         f"{what} at {forecast[key]:.0%}, {flag}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Daily LLM spend report and month-end forecast "
                                     "from Prometheus (exact counter growth, see `pydoc otel_llm.cli.report`).")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL (default: %(default)s)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--budget-daily", type=float, default=50.0, metavar="USD", help="default: %(default)s")
    parser.add_argument("--budget-monthly", type=float, default=1000.0, metavar="USD", help="default: %(default)s")
    parser.add_argument("--top", type=int, default=5, help="top spenders to list (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    now = datetime.now(timezone.utc)
    try:
        raw = fetch(args.prometheus, now)
    except PrometheusError as exc:
        error(PROG, str(exc))
        return 1
    report = build_report(raw, now, args.budget_daily, args.budget_monthly, args.top)
    if args.format == "json":
        print(format_json(report))
    else:
        print(format_text(report, tty=colour("x", "red") != "x"))
    return 0
