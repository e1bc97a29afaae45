"""Every dashboard panel returns data over a replayed day of the case, at 1h, 6h and 24h (issue 17.7).

A day of the case's traffic (caseday.py) is backfilled into a real Prometheus; the shipped recording
rules are backfilled over it level by level (a rule after the rules it reads), as
`promtool tsdb create-blocks-from rules` evaluates one file against what is already stored. Then
each panel's query runs as Grafana would send it: `$__interval` and `$__rate_interval` from the
range and the datasource's `timeInterval` (60s). Limits of the backfill: rules that read their own
previous value (the month and day accumulators) see none of it, so their figures are per-minute
deltas here; the point is that every panel has data to show, which their exactness tests do not
cover. Tempo panels are not checked (no Tempo here).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import caseday
import pytest
import yaml
from stackservers import running_prometheus

REPO = Path(__file__).resolve().parents[2]
# The case's key 0123456789ab has a monthly budget in the fixture (remaining budget per key).
RULE_FILES = ("rules/cost.rules.yml", "rules/reliability.rules.yml", "rules/budget_day.yml",
              "tests/budgets.fixture.rules.yml")
# Accumulators read their own previous value at every evaluation, which a backfill cannot give
# them (it evaluates a rule over the whole day at once): their panels are covered by the promtool
# month and day tests instead, and left out here.
ACCUMULATED = re.compile(r"scope:otel_llm_cost_usd:(mtd|dtd)")
RANGES = {"1h": 3600, "6h": 21600, "24h": 86400}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# A previous value (last_over_time over a window): read from what is stored, not a dependency.
PREVIOUS = re.compile(r"last_over_time\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?\[[^\]]*\](\s*offset\s+\w+)?\s*\)")


def recording_rules() -> list[dict[str, Any]]:
    out = []
    for name in RULE_FILES:
        for group in yaml.safe_load((REPO / "prometheus" / name).read_text())["groups"]:
            out += [r for r in group["rules"] if "record" in r]
    return out


def levels(rules: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rules grouped so that each reads only series recorded at an earlier level (or itself)."""
    names = {r["record"] for r in rules}
    needs = {id(r): set(NAME.findall(PREVIOUS.sub("", r["expr"]))) & names - {r["record"]} for r in rules}
    done: set[str] = set()
    out: list[list[dict[str, Any]]] = []
    left = list(rules)
    while left:
        # A record name may have several rules (scope sums): the level waits for all of them.
        ready = [r for r in left if needs[id(r)] <= done]
        assert ready, f"circular: {[r['record'] for r in left]}"
        out.append(ready)
        left = [r for r in left if r not in ready]
        done |= {r["record"] for r in ready} - {r["record"] for r in left}
    return out


def time_interval() -> int:
    """The Prometheus datasource's timeInterval in seconds (Grafana's default when unset: 15s)."""
    config = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    prometheus = next(d for d in config["datasources"] if d["uid"] == "prometheus")
    value = str(prometheus.get("jsonData", {}).get("timeInterval", "15s"))
    return int(value.removesuffix("s"))


def grafana_intervals(range_seconds: int) -> tuple[int, int]:
    """$__interval and $__rate_interval as Grafana computes them from the datasource's
    timeInterval (the scrape interval it assumes): the interval is range / max data points (about
    1000), at least timeInterval, rounded to a minute above one; the rate interval is
    max(interval + timeInterval, 4 x timeInterval)."""
    scrape = time_interval()
    interval = max(scrape, range_seconds // 1000)
    if interval >= 60:
        interval = round(interval / 60) * 60
    return interval, max(interval + scrape, 4 * scrape)


def substitute(expr: str, range_seconds: int) -> str:
    interval, rate_interval = grafana_intervals(range_seconds)
    for variable, value in (("$__rate_interval", f"{rate_interval}s"), ("$__interval", f"{interval}s"),
                            ("$__range", f"{range_seconds}s"), ("$model", ".*"), ("$env", ".*"),
                            ("$user", "u07"), ("$session", "s-1")):
        expr = expr.replace(variable, value)
    return expr


def panel_queries() -> Iterator[tuple[str, str, bool]]:
    for path in sorted((REPO / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                if "expr" in target and not ACCUMULATED.search(target["expr"]):
                    yield f"{path.stem}: {panel['title']}", target["expr"], bool(target.get("instant"))


@pytest.fixture(scope="module")
def replayed_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    promtool = shutil.which("promtool")
    if promtool is None or shutil.which("prometheus") is None:
        pytest.skip("promtool/prometheus not installed: run scripts/install-tools")
    work = tmp_path_factory.mktemp("caseday")
    data = work / "prometheus-data"
    end = int(time.time()) // 60 * 60 - 120
    caseday.backfill(caseday.openmetrics(end), data, promtool)
    for number, level in enumerate(levels(recording_rules())):
        # One file path and group name for every level: a group's evaluation times are offset
        # within the interval by a hash of both, and a rule must be evaluated at the same instants
        # as the rules it reads (a delta between two recorded values one step apart).
        rules = work / "level.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "caseday", "interval": "1m", "rules": level}]}))
        out = work / f"blocks-{number}"
        with running_prometheus(work) as prometheus:
            subprocess.run([promtool, "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={prometheus.url}",
                            f"--start={end - 86400}", f"--end={end}", f"--output-dir={out}", str(rules)],
                           check=True, capture_output=True, text=True, timeout=600)
        for block in out.iterdir():
            shutil.move(str(block), data / block.name)
    yield work, end


@pytest.mark.prometheus
def test_the_replayed_day_is_the_case(replayed_day: tuple[Path, int]) -> None:
    work, end = replayed_day
    with running_prometheus(work) as prometheus:
        calls = prometheus.query("sum(increase(otel_llm_calls_total[1d]))", at=end)["result"]
        users = prometheus.query("count(count by (user_id) (otel_llm_cost_USD_total))", at=end)["result"]
        models = prometheus.query("count(count by (gen_ai_request_model) (otel_llm_cost_USD_total))", at=end)["result"]
    assert 2400 < float(calls[0]["value"][1]) < 3200  # increase() misses app-2's restart and first calls
    assert float(users[0]["value"][1]) == 25 and float(models[0]["value"][1]) == 4


@pytest.mark.prometheus
@pytest.mark.parametrize("range_name", sorted(RANGES))
def test_every_panel_returns_data(replayed_day: tuple[Path, int], range_name: str) -> None:
    work, end = replayed_day
    seconds = RANGES[range_name]
    empty = []
    with running_prometheus(work) as prometheus:
        for where, expr, instant in panel_queries():
            query = substitute(expr, seconds)
            if instant:
                result = prometheus.query(query, at=end)["result"]
            else:
                step, _ = grafana_intervals(seconds)
                result = prometheus.query_range(query, end - seconds, end, step)["result"]
            if not result:
                empty.append(where)
    assert not empty, f"empty at {range_name}: " + "; ".join(empty)


@pytest.fixture(scope="module")
def latest_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """The same day from apps in the latest GenAI conventions (no recording rules: the panels that
    read a standard metric read it raw)."""
    promtool = shutil.which("promtool")
    if promtool is None or shutil.which("prometheus") is None:
        pytest.skip("promtool/prometheus not installed: run scripts/install-tools")
    work = tmp_path_factory.mktemp("caseday-latest")
    end = int(time.time()) // 60 * 60 - 120
    caseday.backfill(caseday.openmetrics(end, conventions="latest"), work / "prometheus-data", promtool)
    yield work, end


@pytest.mark.prometheus
@pytest.mark.parametrize("range_name", sorted(RANGES))
def test_panels_on_standard_metrics_return_data_in_the_latest_conventions(
        latest_day: tuple[Path, int], range_name: str) -> None:
    """Issue 21: with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental the duration and
    time-to-first-chunk histograms have new names; every panel on them still shows the day."""
    work, end = latest_day
    seconds = RANGES[range_name]
    step, _ = grafana_intervals(seconds)
    standard = [(where, expr) for where, expr, _ in panel_queries() if "gen_ai_client_" in expr]
    assert len(standard) >= 5
    with running_prometheus(work) as prometheus:
        assert prometheus.query("count(gen_ai_client_operation_duration_seconds_bucket)", at=end)["result"] == []
        empty = [where for where, expr in standard
                 if not prometheus.query_range(substitute(expr, seconds), end - seconds, end, step)["result"]]
    assert not empty, f"empty at {range_name}: " + "; ".join(empty)


def test_rate_intervals_hold_two_remote_written_samples() -> None:
    """With Grafana's default 15s, $__rate_interval is 1m at short ranges: at most one 60s sample,
    and rate() returns nothing (the datasource's timeInterval fixes it)."""
    for seconds in RANGES.values():
        assert grafana_intervals(seconds)[1] >= 120, seconds
