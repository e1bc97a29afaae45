"""Generate exactness_*.generated.test.yml: promtool tests whose expected figures are computed here.

The scenario is written as spend events (minute, USD) per process, so the truth does not depend on
the PromQL under test: a process's counter is the running sum of its events, restarts start again
from zero, and the 24h / month-to-date truths are sums of events in the window. Amounts are
multiples of 1/8, so every sum is exact in float64 and the tests can demand equality (stricter than
the 1% the budgets need). A test checks the committed file equals a fresh generation.

    python prometheus/tests/generate_exactness.py   # rewrite the file
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml

HERE: Final = Path(__file__).parent
DAY: Final = 1440  # minutes
MONTH_END: Final = 31 * DAY  # 1970-02-01 00:00 UTC, in minutes from the epoch


@dataclass
class Process:
    """One process's cost series: labels, and spend events; a None event marks a restart."""

    labels: dict[str, str]
    events: list[tuple[int, float | None]] = field(default_factory=list)

    def samples(self, gaps: Iterable[range] = ()) -> dict[int, float]:
        """Cumulative counter value per minute, from first event to last, minus scrape gaps."""
        hidden = {m for gap in gaps for m in gap}
        value, out = 0.0, {}
        first, last = self.events[0][0], self.events[-1][0]
        by_minute: dict[int, list[float | None]] = {}
        for minute, usd in self.events:
            by_minute.setdefault(minute, []).append(usd)
        for minute in range(first, last + 1):
            for usd in by_minute.get(minute, []):
                value = 0.0 if usd is None else value + usd
            if minute not in hidden:
                out[minute] = value
        return out

    def spend(self, start: int, end: int) -> float:
        """True spend in the minutes (start, end]."""
        return sum(usd for minute, usd in self.events if usd is not None and start < minute <= end)


def values(samples: dict[int, float], horizon: int) -> str:
    """promtool's series notation, one token per minute from 0; `_` where there is no sample."""
    tokens, minute = [], 0
    while minute <= min(horizon, max(samples)):
        if minute in samples:
            tokens.append(repr(samples[minute]))
            minute += 1
            continue
        run = 0
        while minute + run <= horizon and minute + run not in samples and minute + run <= max(samples):
            run += 1
        tokens.append(f"_x{run}" if run > 1 else "_")
        minute += run
    return " ".join(tokens)


def series_name(labels: dict[str, str]) -> str:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"otel_llm_cost_USD_total{{{body}}}"


def daily_scenario() -> tuple[list[Process], dict[str, list[range]]]:
    """A day and a bit: a steady app, 60 short-lived replicas, restarts and a scrape gap."""
    base = {"gen_ai_request_model": "gpt-4.1", "gen_ai_provider_name": "openai"}
    steady = Process({**base, "instance": "app-1", "user_id": "alice", "otel_llm_team": "support",
                      "otel_llm_api_key_fingerprint": "0123456789ab"})
    steady.events = [(m, 0.125) for m in range(1, 1561)]
    procs = [steady]
    # Replicas that live three minutes each: their first increment is most of their spend.
    for i in range(60):
        start = 60 + 25 * i
        p = Process({**base, "instance": f"replica-{i}", "user_id": "bob", "otel_llm_team": "support",
                     "otel_llm_api_key_fingerprint": "fedcba987654", "gen_ai_request_model": "deepseek-v3.2"})
        p.events = [(start, 0.5), (start + 1, 0.5), (start + 2, 0.25)]
        procs.append(p)
    # One identity restarting (scrape path: same instance label), counter going back to zero.
    restarts = Process({**base, "instance": "app-2", "user_id": "carol", "otel_llm_team": "research"})
    for k in range(5):
        t0 = 200 + 250 * k
        restarts.events += [(t0, None), (t0, 2.0), (t0 + 10, 1.0), (t0 + 100, 0.375)]
    procs.append(restarts)
    # Spend during a 20-minute scrape/ingest gap is booked when the series comes back.
    gappy = Process({**base, "instance": "app-3", "user_id": "dave"})
    gappy.events = [(m, 0.25) for m in range(700, 900)]
    procs.append(gappy)
    # A process with user attribution switched off only counts globally.
    anon = Process({**base, "instance": "app-4"})
    anon.events = [(m, 1.0) for m in range(1000, 1010)]
    procs.append(anon)
    return procs, {"app-3": [range(760, 780)]}


def month_scenario() -> tuple[list[Process], dict[str, list[range]]]:
    """Around the 1970-01 / 1970-02 boundary: short-lived replicas that straddle midnight."""
    base = {"gen_ai_request_model": "gpt-4.1", "gen_ai_provider_name": "openai"}
    steady = Process({**base, "instance": "app-1", "user_id": "alice"})
    steady.events = [(m, 0.125) for m in range(MONTH_END - 120, MONTH_END + 120)]
    procs = [steady]
    for i in range(24):
        start = MONTH_END - 60 + 5 * i
        p = Process({**base, "instance": f"replica-{i}", "user_id": "bob"})
        p.events = [(start, 0.75), (start + 2, 0.25)]
        procs.append(p)
    # Spent only in January: must be gone from February's month-to-date figures.
    jan_only = Process({**base, "instance": "app-5", "user_id": "erin"})
    jan_only.events = [(MONTH_END - 100, 3.0), (MONTH_END - 90, 1.0)]
    procs.append(jan_only)
    return procs, {}


SCOPES: Final = {"user": "user_id", "team": "otel_llm_team", "api_key": "otel_llm_api_key_fingerprint"}


def truths(procs: list[Process], start: int, end: int) -> dict[tuple[str, str], float]:
    """Spend in (start, end] per (scope, holder); scopes with no event in the window are absent."""
    out: dict[tuple[str, str], float] = {}
    for p in procs:
        usd = p.spend(start, end)
        if not any(usd_ is not None and start < m <= end for m, usd_ in p.events):
            continue
        keys = [("global", "")] + [(s, p.labels[l]) for s, l in SCOPES.items() if l in p.labels]
        for key in keys:
            out[key] = out.get(key, 0.0) + usd
    return out


def exp_samples(metric: str, figures: dict[tuple[str, str], float]) -> list[dict[str, object]]:
    rows = []
    for (scope, holder), usd in sorted(figures.items()):
        label = f',{SCOPES[scope]}="{holder}"' if scope != "global" else ""
        rows.append({"labels": f'{metric}{{scope="{scope}"{label}}}', "value": usd})
    return rows


def input_series(procs: list[Process], gaps: dict[str, list[range]], horizon: int) -> list[dict[str, str]]:
    return [{"series": series_name(p.labels), "values": values(p.samples(gaps.get(p.labels["instance"], ())),
                                                                  horizon)} for p in procs]


def daily_test() -> dict[str, object]:
    procs, gaps = daily_scenario()
    checks: list[dict[str, object]] = []
    for t in (300, 900, 1200, 1560):
        checks.append({"expr": "scope:otel_llm_cost_usd:sum24h", "eval_time": f"{t}m",
                       "exp_samples": exp_samples("scope:otel_llm_cost_usd:sum24h",
                                                  truths(procs, t - DAY, t))})
    for t in (1200, 1560):
        checks.append({"expr": "scope:otel_llm_cost_usd:mtd", "eval_time": f"{t}m",
                       "exp_samples": exp_samples("scope:otel_llm_cost_usd:mtd", truths(procs, 0, t))})
    t = 1560
    checks.append({"expr": "scope:otel_llm_cost_usd:sum1h", "eval_time": f"{t}m",
                   "exp_samples": exp_samples("scope:otel_llm_cost_usd:sum1h", truths(procs, t - 60, t))})
    bob = truths(procs, t - DAY, t)[("user", "bob")]
    # Why the rules exist: increase() misses each short-lived replica's first increment (and
    # extrapolates), so it is more than 1% off for bob, whose spend is all short-lived replicas.
    checks.append({"expr": f'abs(sum(increase(otel_llm_cost_USD_total{{user_id="bob"}}[24h])) / {bob!r} - 1)'
                           " > bool 0.01",
                   "eval_time": f"{t}m", "exp_samples": [{"labels": "{}", "value": 1}]})
    return {"name": "24h and month-to-date figures are exact across short-lived replicas, restarts, gaps",
            "interval": "1m", "input_series": input_series(procs, gaps, 1560), "promql_expr_test": checks}


def month_test() -> dict[str, object]:
    procs, gaps = month_scenario()
    checks: list[dict[str, object]] = []
    # Just before, at, and after the boundary; the minute ending 00:00 belongs to January.
    for t in (MONTH_END - 1, MONTH_END, MONTH_END + 1, MONTH_END + 30, MONTH_END + 119):
        month_start = 0 if t <= MONTH_END else MONTH_END
        checks.append({"expr": "scope:otel_llm_cost_usd:mtd", "eval_time": f"{t}m",
                       "exp_samples": exp_samples("scope:otel_llm_cost_usd:mtd",
                                                  truths(procs, month_start, t))})
    return {"name": "month-to-date resets at the calendar month and stays exact across it",
            "interval": "1m", "input_series": input_series(procs, gaps, MONTH_END + 120),
            "promql_expr_test": checks}


def render_all() -> dict[Path, str]:
    """File -> text. Two files, so that the slow month run (44,760 evaluations) runs in parallel."""
    header = "# GENERATED by prometheus/tests/generate_exactness.py; do not edit (a test checks it).\n"
    out = {}
    for name, test in (("daily", daily_test()), ("month", month_test())):
        doc = {"rule_files": ["../rules/cost.rules.yml", "budgets.fixture.rules.yml"],
               "evaluation_interval": "1m", "tests": [test]}
        out[HERE / f"exactness_{name}.generated.test.yml"] = header + yaml.safe_dump(
            doc, sort_keys=False, width=100000)
    return out


def main() -> int:
    for path, text in render_all().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
