"""`otel-llm report`: yesterday's LLM spend and the month to date, read from Prometheus: a screenful of
text, JSON, a self-contained HTML file, chargeback CSV and FinOps FOCUS exports, and a chat digest.

Figures come from cli/reportdata.py (the periods and the pure summaries) over the queries of
cli/queries.py (exact counter growth, see `pydoc otel_llm.cli.queries`). Budgets, in order: the
--budget-daily/--budget-monthly flags, a --budgets file (prometheus/budgets.yaml), or the budget
series the alert rules use (`otel_llm:budget_usd:*{scope="global"}`); each is validated the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from otel_llm.cli import budget_rules as budget_file

from . import reportdata as data
from ._term import colour, error
from .queries import Prometheus, PrometheusError, Sample, growth, matchers, processes_seen, unmatched

__all__ = ["PrometheusError", "build_report", "exact_query", "fetch", "format_json", "format_text", "main",
           "query"]

PROG = "otel-llm report"
TRACE_URL_ENV = "OTEL_LLM_TRACE_URL"
WEBHOOK_ENV = "OTEL_LLM_DIGEST_WEBHOOK"


def query(base_url: str, promql: str, at: datetime | None = None, timeout: float = 10.0) -> list[Sample]:
    """One instant query (kept for the demo and its tests; new code uses queries.Prometheus)."""
    return Prometheus(base_url, timeout).query(promql, at)


def exact_query(metric: str, window_seconds: int, by: Sequence[str]) -> str:
    return growth(metric, window_seconds, by)


def fetch(base_url: str, now: datetime) -> dict[str, data.Raw]:
    """The rolling view the demo prints: the last 24 hours and the UTC month to date."""
    periods = data.report_periods("24h", now, timezone.utc)
    return data.collect(Prometheus(base_url), periods, data.daily_periods(periods[1], timezone.utc))


def build_report(raw: Mapping[str, data.Raw], now: datetime, budget_daily: float | None,
                 budget_monthly: float | None, top: int = 5) -> dict[str, Any]:
    """Pure: the rolling report from fetch()'s results."""
    periods = data.report_periods("24h", now, timezone.utc)
    return data.build(raw, periods, data.daily_periods(periods[1], timezone.utc), now, timezone.utc,
                      {"daily": budget_daily, "monthly": budget_monthly}, top, "command line")


def format_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.4f}" if abs(value) < 10 else f"${value:,.2f}"


def spend(summary: Mapping[str, Any]) -> str:
    """Spend, with what it leaves out said next to it: unpriced calls are never a silent $0."""
    text = usd(summary["spend_usd"])
    if summary["unpriced_calls"]:
        text += f" + {summary['unpriced_calls']:,.0f} unpriced calls"
    return text


def _ranked(rows: Sequence[Mapping[str, Any]], top: int) -> str:
    shown = [f"{row['name']} {usd(row['spend_usd']) if not row.get('unpriced_calls') or row['spend_usd'] else 'unpriced'}"
             for row in rows[:top]]
    more = f" (+{len(rows) - top} more)" if len(rows) > top else ""
    return ", ".join(shown) + more if shown else "-"


def _flag(over: bool, tty: bool) -> str:
    text = "OVER BUDGET" if over else "within budget"
    return f"\033[{'31' if over else '32'}m{text}\033[0m" if tty else text


def _budget_lines(report: Mapping[str, Any], day: Mapping[str, Any], month: Mapping[str, Any], tty: bool) -> list[str]:
    fc = report["forecast"]
    daily = (f"  of {usd(fc['budget_daily_usd'])} daily budget ({fc['daily_budget_ratio']:.0%}), "
             f"{_flag(fc['over_daily_budget'], tty)}" if "daily_budget_ratio" in fc else "  (no daily budget)")
    monthly = (f" of {usd(fc['budget_monthly_usd'])} ({fc['projected_budget_ratio']:.0%}), "
               f"{_flag(fc['over_monthly_budget'], tty)}" if "projected_budget_ratio" in fc else " (no monthly budget)")
    periods = report["periods"]
    return [f"Day    {spend(day)}{daily}",
            f"Month  {spend(month)} {periods[1]['label']}; month-end forecast "
            f"{usd(fc['projected_month_end_usd'])}{monthly}"]


def _cache_line(summary: Mapping[str, Any]) -> str:
    ratio, hits = summary["cache_hit_ratio"], summary["response_cache_hit_ratio"]
    prompt = "n/a" if ratio is None else f"{ratio:.1%}"
    line = f"Caches prompt cache {prompt} of input tokens, saved {usd(summary['cache_savings_usd'])}; "
    if hits is None:
        return line + "response cache: no lookups"
    lookups = sum(summary["response_cache_requests"].values())
    return line + f"response cache {hits:.1%} of {lookups:,.0f} lookups, saved {usd(summary['response_cache_savings_usd'])}"


def _routing_line(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in summary["routing"] if r["reference_usd"] is not None]
    if not rows:
        return None
    parts = [f"{r['prompt_size']} {usd(r['would_save_usd'])}" for r in rows]
    return f"Route  to {rows[0]['reference_model']} would save: " + ", ".join(parts)


def _top(counts: Mapping[str, float], top: int = 2) -> str:
    ranked = sorted(((n, m) for m, n in counts.items() if n), reverse=True)
    more = f", +{len(ranked) - top} more" if len(ranked) > top else ""
    return ", ".join(f"{m} {n:,.0f}" for n, m in ranked[:top]) + more


def _missing_line(summary: Mapping[str, Any]) -> str | None:
    parts = [f"{summary[f'{key}_calls']:,.0f} {key} calls ({_top(summary[f'{key}_by_model'])})"
             for key in ("unpriced", "unmetered") if summary[f"{key}_calls"]]
    return "Not in the spend: " + "; ".join(parts) if parts else None


def _tool_fees_line(summary: Mapping[str, Any]) -> str | None:
    runs = summary["unpriced_tool_runs"]
    return (f"Tool fees not in the spend: {runs:,.0f} hosted tool runs ({_top(summary['unpriced_tool_runs_by_model'])})"
            if runs else None)


def _errors_line(summary: Mapping[str, Any]) -> str | None:
    rows = summary["reliability"]
    failed = {r["model"]: r["errors"] for r in rows}
    limited = {r["model"]: r["http_429"] for r in rows}
    if not any(failed.values()) and not any(limited.values()):
        return None
    return (f"Errors {sum(failed.values()):,.0f} of {summary['calls']:,.0f} calls failed{_which(failed)}; "
            f"{sum(limited.values()):,.0f} HTTP 429{_which(limited)}")


def _which(counts: Mapping[str, float]) -> str:
    """ (the model with the most, +N more), or nothing when there are none."""
    return f" ({_top(counts, 1)})" if any(counts.values()) else ""


def format_text(report: Mapping[str, Any], rows: int = 3, tty: bool = False) -> str:
    """Pure: the report in one screen. `tty` only decides the colour of the budget flags."""
    periods = report["periods"]
    day, month = report[periods[0]["key"]], report[periods[1]["key"]]
    where = f" where {report['match']}" if report.get("match") else ""
    lines = [f"LLM spend {periods[0]['label']} ({report['timezone']}){where}, read {report['generated_at']}"]
    for warning in data.warnings(report):
        wrapped = textwrap.wrap(warning, 100, initial_indent="! ", subsequent_indent="  ")
        lines += [colour(line, "red") for line in wrapped] if tty else wrapped
    lines += _budget_lines(report, day, month, tty)
    for dim, title in (("model", "Models"), ("user", "Users "), ("team", "Teams "), ("api_key", "Keys  "),
                       ("feature", "Feat. ")):
        table = day["by"][dim]
        if dim == "feature" and all(r["name"] == data.NONE for r in table):
            continue  # not recorded (OTEL_LLM_METRIC_ATTRIBUTES leaves it out by default)
        lines.append(f"{title} {_ranked(table, rows)}")
    lines.append(_cache_line(day))
    lines += [line for line in (_routing_line(day), _missing_line(day), _tool_fees_line(day), _errors_line(day)) if line]
    return "\n".join(lines)


def _budget_arg(flag: str) -> Any:
    def parse(text: str) -> float:
        try:
            value: object = float(text)
        except ValueError:
            value = text
        try:
            return budget_file.validate_usd(value, "command line", flag)
        except budget_file.BudgetError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"command line: {flag}: ")) from exc
    return parse


def _tz(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown time zone {name!r} (an IANA name, e.g. Europe/Paris)") from exc


def _grouping(text: str) -> list[str]:
    from .report_export import GROUPINGS

    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(GROUPINGS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown label {', '.join(unknown)} (choose from {', '.join(GROUPINGS)})")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="LLM spend for a day and its month to date, with the "
                                     "month-end forecast and budget flags, read from Prometheus.")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL (default: %(default)s)")
    parser.add_argument("--period", default="yesterday", metavar="DAY",
                        help="yesterday (default), today, 24h (rolling) or a date YYYY-MM-DD")
    parser.add_argument("--tz", type=_tz, default=timezone.utc, metavar="ZONE",
                        help="time zone of the days and the month, an IANA name (default: UTC)")
    parser.add_argument("--match", type=matchers, default="", metavar="SELECTOR",
                        help="only the series these label matchers select, e.g. "
                             "'deployment_environment_name=\"prod\"' (default: all); budgets apply as given")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="what to print (default: text)")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the self-contained HTML report")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the chargeback CSV (per day and label set)")
    parser.add_argument("--focus", type=Path, metavar="FILE", help="also write the chargeback as FinOps FOCUS CSV")
    parser.add_argument("--group-by", type=_grouping, default="model,provider,user,team,api_key,feature",
                        metavar="LABELS", help="rows of --csv/--focus per day and per these labels, comma-separated "
                        "(model and provider always; default: all of user,team,api_key,feature)")
    parser.add_argument("--post-webhook", metavar="URL", default=os.environ.get(WEBHOOK_ENV),
                        help=f"post a digest to a Slack-compatible webhook (default: ${WEBHOOK_ENV})")
    parser.add_argument("--trace-url", metavar="TEMPLATE", default=os.environ.get(TRACE_URL_ENV),
                        help="link calls to traces: a URL with {trace_id} (default: $" + TRACE_URL_ENV + ")")
    parser.add_argument("--budgets", type=Path, metavar="FILE", help="read the global budgets from this budgets.yaml")
    parser.add_argument("--budget-daily", type=_budget_arg("--budget-daily"), metavar="USD")
    parser.add_argument("--budget-monthly", type=_budget_arg("--budget-monthly"), metavar="USD")
    parser.add_argument("--top", type=int, default=10, help="rows per ranked table in HTML (default: %(default)s)")
    return parser


def resolve_budgets(args: argparse.Namespace, prometheus: Prometheus) -> tuple[dict[str, float | None], str]:
    """Flags, then the budgets file, then the budget series of the alert rules. Raises BudgetError."""
    found: dict[str, float | None] = {"daily": args.budget_daily, "monthly": args.budget_monthly}
    sources = ["command line"] if any(v is not None for v in found.values()) else []
    if args.budgets is not None:
        from_file = {b.period: b.usd for b in budget_file.load(args.budgets) if b.scope == "global"}
        for period in found:
            if found[period] is None and period in from_file:
                found[period] = from_file[period]
        sources.append(str(args.budgets))
    if any(v is None for v in found.values()) and args.budgets is None:
        from_rules = data.budgets_from(prometheus)
        for period in found:
            if found[period] is None and from_rules[period] is not None:
                found[period] = budget_file.validate_usd(from_rules[period], "Prometheus", f"global.{period}")
        sources.append("Prometheus budget rules")
    return found, " + ".join(sources)


def generate(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    prometheus = Prometheus(args.prometheus)
    periods = data.report_periods(args.period, now, args.tz)
    days = data.daily_periods(periods[1], args.tz)
    budgets, source = resolve_budgets(args, prometheus)
    if args.match:  # a typo would read as a day of no spend: say so instead
        problem = unmatched(prometheus, args.match, min(p.start for p in periods), max(p.end for p in periods))
        if problem is not None:
            raise ValueError(problem)
    raw = data.collect(prometheus, periods, days, where=args.match)
    seen = {p.key: processes_seen(prometheus, p.start, p.end) for p in periods}
    report = data.build(raw, periods, days, now, args.tz, budgets, 5, source, prometheus.retention(), seen)
    report["prometheus"] = args.prometheus
    report["match"] = args.match or None
    if args.html is not None:
        from . import report_html
        report["largest_calls"] = report_html.largest_calls(prometheus, periods[0], args.trace_url, where=args.match)
    return report


def write_outputs(args: argparse.Namespace, report: Mapping[str, Any]) -> list[str]:
    """Write the files asked for; returns one line per file for the user."""
    written = []
    if args.html is not None:
        from . import report_html
        args.html.write_text(report_html.render(report, top=args.top), encoding="utf-8")
        written.append(f"HTML report: {args.html.resolve()}")
    if args.csv is not None or args.focus is not None:
        from . import report_export
        if args.csv is not None:
            args.csv.write_text(report_export.chargeback_csv(report, args.group_by), encoding="utf-8")
            written.append(f"chargeback CSV: {args.csv.resolve()}")
        if args.focus is not None:
            args.focus.write_text(report_export.focus_csv(report, args.group_by), encoding="utf-8")
            written.append(f"FOCUS CSV: {args.focus.resolve()}")
    if args.post_webhook:
        from . import report_digest
        report_digest.post(args.post_webhook, report_digest.digest(report))
        written.append("digest posted to the webhook")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    now = datetime.now(timezone.utc)
    try:
        report = generate(args, now)
        written = write_outputs(args, report)
    except (PrometheusError, budget_file.BudgetError, OSError, ValueError, ImportError) as exc:
        error(PROG, str(exc))
        return 1
    print(format_json(report) if args.format == "json" else format_text(report, tty=colour("x", "red") != "x"))
    for warning in data.warnings(report):  # whatever was printed or written (JSON, CSV, FOCUS, a digest)
        print(f"{PROG}: {warning}", file=sys.stderr)
    for line in written:
        print(line, file=sys.stderr)
    return 0

