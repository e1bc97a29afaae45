"""`otel-llm reconcile`: does the telemetry match the provider's bill? Per UTC day and model.

Reads the provider's own billing data for a period (OpenAI's organization Costs and Usage APIs with
`OPENAI_ADMIN_KEY`, Anthropic's cost and usage reports with `ANTHROPIC_ADMIN_KEY`, or any gateway's CSV
export with `--from-csv`), reads what our telemetry recorded in Prometheus for the same days, and
prints billed vs recorded spend and tokens, the difference, its share, the days and models that
explain it and the likely cause per row. `--serve PORT` publishes the billed figures as Prometheus
gauges instead (billing/exporter.py), refreshed every `--interval`.

Billing data settles late (hours): only days that ended at least `--settle` seconds ago count, unless
`--include-today` also reads today up to now minus `--settle` (demos, tests, a live simulator).
Admin keys are read from the environment only and never printed or logged.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import queries
from ._term import colour, error
from .billing import BillingError, Line, anthropic, csvfile, exporter, openai, recorded, total
from .billing.compare import Row, compare, summarise

__all__ = ["Period", "build_parser", "demo_line", "explained_line", "main", "period", "reconcile"]

PROG = "otel-llm reconcile"
_KEY_VARIABLES = {"openai": "OPENAI_ADMIN_KEY", "anthropic": "ANTHROPIC_ADMIN_KEY"}
_DEFAULT_URLS = {"openai": openai.DEFAULT_BASE_URL, "anthropic": anthropic.DEFAULT_BASE_URL}


@dataclass(frozen=True)
class Period:
    """UTC midnights of the days read, and the moment the newest one is read up to."""

    days: tuple[datetime, ...]
    horizon: datetime

    @property
    def settled(self) -> datetime | None:
        return self.days[-1] if self.days else None

    @property
    def partial(self) -> bool:
        return bool(self.days) and self.horizon < self.days[-1] + timedelta(days=1)


def period(now: datetime, settle: float, days: int, include_today: bool,
           since: datetime | None = None, until: datetime | None = None) -> Period:
    """Pure: the settled days to read. The newest is the last day that ended `settle` seconds ago
    (or, with include_today, the day of now - settle, read up to then); `until` caps it."""
    horizon = now - timedelta(seconds=settle)
    newest = _midnight(horizon) if include_today else _midnight(horizon) - timedelta(days=1)
    if until is not None and _midnight(until) < newest:
        newest, horizon = _midnight(until), _midnight(until) + timedelta(days=1)
    elif not include_today:
        horizon = newest + timedelta(days=1)
    first = _midnight(since) if since is not None else newest - timedelta(days=max(days, 1) - 1)
    count = (newest - first).days + 1
    return Period(tuple(first + timedelta(days=i) for i in range(max(count, 0))), horizon)


def _midnight(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def billed_lines(args: argparse.Namespace, span: Period) -> tuple[str, list[Line]]:
    """(provider name, billing lines of the period)."""
    if args.from_csv is not None:
        path = Path(args.from_csv)
        lines = csvfile.read(path, csvfile.parse_map(args.csv_map or ""))
        name = args.provider_name or path.stem
    else:
        variable = _KEY_VARIABLES[args.provider]
        # `admin_key` is set only by code (the --demo's simulator key), never by a command-line option.
        key = (getattr(args, "admin_key", None) or os.environ.get(variable, "")).strip()
        if not key:
            raise BillingError(f"set {variable} to an admin key of the organization (it is never printed)")
        reader = openai.fetch if args.provider == "openai" else anthropic.fetch
        try:
            lines = reader(args.base_url or _DEFAULT_URLS[args.provider], key, span.days[0], span.horizon)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BillingError(f"the {args.provider} billing API answered an unexpected shape "
                               f"({type(exc).__name__}: {str(exc)[:80]})") from None
        name = args.provider_name or args.provider
    dates = {day.strftime("%Y-%m-%d") for day in span.days}
    return name, [line for line in lines if line.date in dates]


def reconcile(args: argparse.Namespace, now: datetime) -> tuple[str, Period, list[Row]]:
    provider, span, rows, _ = reconcile_lines(args, now)
    return provider, span, rows


def reconcile_lines(args: argparse.Namespace, now: datetime) -> tuple[str, Period, list[Row], list[Line]]:
    """(provider, period, rows per day and model, the bill's own lines with their project and key)."""
    span = period(now, args.settle, args.days, args.include_today, args.since, args.until)
    if not span.days:
        raise BillingError("the period holds no settled day (check --since/--until and --settle)")
    provider, billed = billed_lines(args, span)
    ours, unmetered = recorded.fetch(args.prometheus, span.days, span.horizon, args.match)
    silent = recorded.silent_days(args.prometheus, span.days, span.horizon)
    return provider, span, compare(billed, ours, unmetered, args.tolerance, silent), billed


def billed_by(billed: list[Line], dimension: str) -> list[dict[str, Any]]:
    """The bill per project or API key over the period, largest spend first, from the lines that name
    one (OpenAI's costs name projects, not keys: a key's row has tokens and no cost). Billed side only:
    our telemetry knows keys by a one-way fingerprint, not by the provider's key id."""
    rows = [{dimension: key[0], "billed_cost_usd": figures.cost_usd, "input_tokens": figures.input_tokens,
             "output_tokens": figures.output_tokens, "requests": figures.requests}
            for key, figures in total([line for line in billed if getattr(line, dimension)], by=(dimension,)).items()]
    return sorted(rows, key=lambda row: (-(row["billed_cost_usd"] or 0.0), str(row[dimension])))


def explained_line(summary: dict[str, Any]) -> str:
    """The one line a demo ends with."""
    share = summary["explained_share"]
    if share is None:
        return "nothing billed in the period: nothing to reconcile"
    return (f"recorded spend explains {share:.1%} of the billed spend "
            f"(${summary['recorded_cost_usd']:,.4f} of ${summary['billed_cost_usd']:,.4f})")


def demo_line(prometheus: str, base_urls: Sequence[str], admin_key: str) -> str:
    """Today so far, billed by one or more OpenAI-compatible billing endpoints (the demo's simulators,
    live: no lag) against everything recorded; the one line `otel-llm demo` ends with."""
    try:
        span = period(datetime.now(timezone.utc), 0, 1, True)
        billed = [line for url in base_urls for line in openai.fetch(url, admin_key, span.days[0], span.horizon)]
        ours, unmetered = recorded.fetch(prometheus, span.days, span.horizon)
    except BillingError as exc:
        return f"reconciliation failed: {exc}"
    return explained_line(summarise(compare(billed, ours, unmetered)))


def format_text(provider: str, span: Period, rows: list[Row], summary: dict[str, Any],
                by_project: Sequence[dict[str, Any]] = ()) -> str:
    end = span.horizon.strftime("%Y-%m-%d %H:%M UTC")
    partial = " (newest day partial)" if span.partial else ""
    lines = [f"Billed ({provider}) vs recorded, {span.days[0].strftime('%Y-%m-%d')} .. {end}{partial}", ""]
    header = f"{'date':<10}  {'model':<24} {'billed':>11} {'recorded':>11} {'diff':>11} {'share':>7}  " \
             f"{'in billed/recorded':>23}  {'out billed/recorded':>21}  cause"
    lines.append(header)
    for row in rows:
        share = "-" if row.difference_share is None else f"{row.difference_share:.1%}".replace("-0.0%", "0.0%")
        cause = row.cause if row.cause == "ok" else colour(row.cause, "yellow")
        if row.unmetered_calls:
            cause += f" ({row.unmetered_calls:,.0f} calls recorded with no usage)"
        lines.append(
            f"{row.date:<10}  {row.model[:24]:<24} {_usd(row.billed.cost_usd):>11} {_usd(row.recorded.cost_usd):>11} "
            f"{_usd(row.difference_usd):>11} {share:>7}  {_pair(row.billed.input_tokens, row.recorded.input_tokens):>23}  "
            f"{_pair(row.billed.output_tokens, row.recorded.output_tokens):>21}  {cause}")
    if by_project:
        lines.append("Billed per project: " + ", ".join(
            f"{item['project']} {_usd(item['billed_cost_usd'])}" for item in by_project[:8]))
    lines += ["", explained_line(summary)]
    if summary["largest_differences"]:
        lines.append("Largest differences:")
        for item in summary["largest_differences"]:
            share = item["share_of_difference"]
            lines.append(f"  {item['date']} {item['model']}: {_usd(item['difference_usd'])}"
                         f"{'' if share is None else f' ({share:.0%} of the difference)'}: {item['cause_text']}")
    return "\n".join(lines)


def format_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    dicts = [row.as_dict() for row in rows]
    writer = csv.DictWriter(out, fieldnames=list(dicts[0]) if dicts else ["date", "model"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(dicts)
    return out.getvalue()


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{abs(value):,.4f}"
    return f"{'-' if value < 0 and text.strip('0.,') else ''}${text}"


def _pair(billed: float | None, ours: float | None) -> str:
    return f"{'-' if billed is None else f'{billed:,.0f}'}/{ours or 0:,.0f}"


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Compare the provider's bill with what the telemetry recorded, per UTC day and model.",
        epilog="Keys come from OPENAI_ADMIN_KEY / ANTHROPIC_ADMIN_KEY, never from the command line. "
        "CSV fields for --csv-map: " + ", ".join(csvfile.FIELDS) + ".")
    add = parser.add_argument
    add("--provider", choices=("openai", "anthropic"), default="openai", help="billing API to read (default: openai)")
    add("--base-url", help="the provider API's base URL (default: the provider's; a simulator's /v1 for tests)")
    add("--from-csv", metavar="FILE", help="read a gateway's or reseller's CSV export instead of an API")
    add("--csv-map", metavar="MAP", help="field=Column,... for --from-csv, e.g. date=Date,model=Model,cost=Amount")
    add("--provider-name", help="the `provider` label / title (default: the provider, or the CSV's file name)")
    add("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL (default: %(default)s)")
    add("--match", type=queries.matchers, default="", metavar="SELECTOR",
        help="label matchers for our series, e.g. 'server_address=\"api.openai.com\"' (default: all)")
    add("--days", type=int, default=7, help="settled days to read, newest last (default: %(default)s)")
    add("--since", type=_date, help="first day (YYYY-MM-DD, UTC)")
    add("--until", type=_date, help="last day (YYYY-MM-DD, UTC)")
    add("--settle", type=_non_negative, default=86400.0, metavar="SECONDS",
        help="how long after a day ends its bill is final (default: %(default)s)")
    add("--include-today", action="store_true", help="also read today, up to now minus --settle")
    add("--tolerance", type=_non_negative, default=0.005, help="relative difference taken as a match (default: 0.5%%)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="rows and summary as JSON")
    out.add_argument("--csv", action="store_true", help="rows as CSV")
    out.add_argument("--serve", type=int, metavar="PORT", help="exporter mode: serve the gauges on PORT (0: any)")
    add("--host", default="127.0.0.1", help="address for --serve (default: %(default)s)")
    add("--interval", type=_non_negative, default=3600.0, help="seconds between refreshes with --serve (default: %(default)s)")
    add("--demo", action="store_true",
        help="show the alert firing: a simulator, an instrumented app and one worker without otel_llm, a real "
        "Prometheus with LLMSpendNotReconciled (needs the prometheus binary)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.csv_map and not args.from_csv:
        parser.error("--csv-map needs --from-csv")
    if args.serve is not None:
        return _serve(args)
    if args.demo:
        return _demo()
    try:
        provider, span, rows, billed = reconcile_lines(args, datetime.now(timezone.utc))
    except BillingError as exc:
        error(PROG, str(exc))
        return 1
    summary = summarise(rows)
    by_project = billed_by(billed, "project")
    if args.json:
        print(json.dumps({"provider": provider, "days": [d.strftime("%Y-%m-%d") for d in span.days],
                          "horizon": span.horizon.isoformat(timespec="seconds"), "partial": span.partial,
                          "rows": [row.as_dict() for row in rows], "summary": summary,
                          "billed_by_project": by_project, "billed_by_api_key": billed_by(billed, "api_key")},
                         indent=2, sort_keys=True))
    elif args.csv:
        sys.stdout.write(format_csv(rows))
    else:
        print(format_text(provider, span, rows, summary, by_project))
    return 0


def _demo() -> int:
    from .billing import drift_demo

    try:
        result = drift_demo.run()
    except BillingError as exc:
        error(PROG, str(exc))
        return 1
    span = period(datetime.now(timezone.utc), 0, 1, True)
    print(format_text("openai (simulator)", span, result.rows, result.summary))
    print(f"\nThe uninstrumented worker spent ${result.uninstrumented_usd:,.4f}.")
    if result.alert is None:
        print(f"{drift_demo.ALERT} did NOT fire")
        return 1
    labels, annotations = result.alert["labels"], result.alert["annotations"]
    print(f"Alert firing: {drift_demo.ALERT} [{labels.get('severity')}] {annotations.get('summary')}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    provider = args.provider_name or (Path(args.from_csv).stem if args.from_csv else args.provider)

    def fetch() -> tuple[list[Row], datetime]:
        _, span, rows = reconcile(args, datetime.now(timezone.utc))
        assert span.settled is not None  # reconcile raises on an empty period
        return rows, span.settled

    try:
        server = exporter.Exporter(provider, fetch, args.host, args.serve, max(args.interval, 1.0)).start()
    except OSError as exc:
        error(PROG, f"cannot listen on {args.host}:{args.serve}: {exc}")
        return 1
    print(f"{PROG}: serving billed figures on http://{args.host}:{server.port}/metrics", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
