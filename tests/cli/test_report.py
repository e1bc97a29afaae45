"""`otel-llm report` against a real Prometheus holding a replayed day of the case (tests/stack/caseday.py):
its figures equal what was written, the text fits a screen, unpriced spend is never $0, budgets are
validated, and `doctor` finds the same data after the app has exited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from caseday import PRICES, REFERENCE, SERVER, UNPRICED_MODEL, caseday_prometheus

from otel_llm.cli import doctor, report
from otel_llm.cli.queries import growth

YESTERDAY = datetime.now(timezone.utc).date() - timedelta(days=1)


@pytest.fixture(scope="module")
def caseday(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with caseday_prometheus(tmp_path_factory.mktemp("caseday"), YESTERDAY) as running:
        yield running


def _json(url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert report.main(["--prometheus", url, "--format", "json", *extra]) == 0
    return dict(json.loads(capsys.readouterr().out))


@pytest.mark.prometheus
def test_report_of_a_replayed_day_equals_what_was_written(caseday: Any, capsys: pytest.CaptureFixture[str]) -> None:
    prometheus, truth = caseday
    got = _json(prometheus.url, capsys)  # default period: yesterday, UTC
    assert got["periods"][0]["label"] == YESTERDAY.isoformat()
    day = got["day"]
    assert day["spend_usd"] == pytest.approx(truth.spend, rel=1e-9)
    for dim in ("model", "user", "team", "api_key", "feature"):
        table = {row["name"]: row["spend_usd"] for row in day["by"][dim] if row["spend_usd"]}
        assert table == pytest.approx(dict(truth.by[dim]), rel=1e-9), dim
    assert [r["name"] for r in day["by"]["model"]][:4] == sorted(truth.by["model"], key=lambda m: -truth.by["model"][m])
    assert day["tokens"] == pytest.approx(dict(truth.tokens))
    assert day["calls"] == truth.calls
    assert (day["unpriced_calls"], day["unpriced_by_model"]) == (truth.unpriced, {UNPRICED_MODEL: truth.unpriced})
    assert day["unmetered_calls"] == truth.unmetered
    assert day["unpriced_tool_runs_by_model"] == {"gpt-4.1": truth.unpriced_tool_runs} and truth.unpriced_tool_runs
    assert day["cache_hit_ratio"] == pytest.approx(truth.tokens["cache_read"] / truth.tokens["input"])
    assert day["cache_savings_usd"] == pytest.approx(truth.prompt_savings, rel=1e-9)
    assert day["response_cache_hit_ratio"] == pytest.approx(truth.response_hits / truth.response_lookups)
    assert day["response_cache_savings_usd"] == pytest.approx(truth.response_savings, rel=1e-9)
    routing = {r["prompt_size"]: r for r in day["routing"]}
    for size, usd in truth.reference.items():
        assert routing[size]["reference_usd"] == pytest.approx(usd, rel=1e-9)
        assert routing[size]["would_save_usd"] == pytest.approx(truth.spend_by_size[size] - usd, rel=1e-9)
        assert routing[size]["reference_model"] == REFERENCE
    reliability = {r["model"]: r for r in day["reliability"]}
    assert {m: r["errors"] for m, r in reliability.items() if r["errors"]} == truth.failed
    assert {m: r["http_429"] for m, r in reliability.items() if r["http_429"]} == truth.http_429
    # The month to date ends with the day; the budgets are the rules' series; the forecast is MTD / elapsed.
    month = got["month_to_date"]
    assert month["spend_usd"] >= day["spend_usd"] - 1e-9
    assert sum(d["spend_usd"] for d in got["days"]) == pytest.approx(month["spend_usd"], rel=1e-9)
    assert got["days"][-1] == {"date": YESTERDAY.isoformat(), "spend_usd": pytest.approx(truth.spend, rel=1e-9),
                               "unpriced_calls": truth.unpriced}
    forecast = got["forecast"]
    assert (forecast["budget_daily_usd"], forecast["budget_monthly_usd"]) == (50.0, 1000.0)
    assert forecast["budget_source"] == "Prometheus budget rules"
    assert forecast["daily_budget_ratio"] == pytest.approx(truth.spend / 50.0)
    assert forecast["projected_month_end_usd"] == pytest.approx(month["spend_usd"] / forecast["month_elapsed_ratio"])
    assert set(PRICES) <= set(truth.by["model"])


@pytest.mark.prometheus
def test_match_reports_only_the_series_it_selects(caseday: Any, capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """One team (or one deployment environment) of a shared Prometheus: `--match` narrows every figure."""
    prometheus, truth = caseday
    got = _json(prometheus.url, capsys, "--match", 'otel_llm_team="support"')
    assert got["match"] == 'otel_llm_team="support"'
    day = got["day"]
    assert day["spend_usd"] == pytest.approx(truth.by["team"]["support"], rel=1e-9)
    assert [row["name"] for row in day["by"]["team"]] == ["support"]
    assert sum(r["spend_usd"] for r in day["by"]["user"]) == pytest.approx(truth.by["team"]["support"], rel=1e-9)
    html = tmp_path / "support.html"
    assert report.main(["--prometheus", prometheus.url, "--match", 'otel_llm_team=~"sup.*", ', "--html", str(html)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f'LLM spend {YESTERDAY} (UTC) where otel_llm_team=~"sup.*"')
    assert "only series where otel_llm_team=~&quot;sup.*&quot;" in html.read_text(encoding="utf-8")


@pytest.mark.prometheus
def test_a_match_that_selects_nothing_is_an_error_naming_the_values_seen(
    caseday: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    """A typo in the value would read as a day without spend: the report refuses, and says what is there."""
    prometheus, truth = caseday
    assert report.main(["--prometheus", prometheus.url, "--match", 'otel_llm_team="suport"']) == 1
    err = capsys.readouterr().err
    assert "selects none of the calls recorded" in err
    assert "otel_llm_team has 'research', 'support'" in err
    # reconcile reads the same series the same way: a typo is not "traffic that never went through otel_llm".
    from otel_llm.cli.billing import BillingError, recorded

    midnight = datetime.combine(YESTERDAY, datetime.min.time(), tzinfo=timezone.utc)
    with pytest.raises(BillingError, match="selects none of the calls recorded"):
        recorded.fetch(prometheus.url, [midnight], midnight + timedelta(days=1), 'otel_llm_team="suport"')
    lines, _ = recorded.fetch(prometheus.url, [midnight], midnight + timedelta(days=1), 'otel_llm_team="support"')
    assert sum(line.figures.cost_usd or 0.0 for line in lines) == pytest.approx(truth.by["team"]["support"], rel=1e-9)


@pytest.mark.parametrize("bad", ["support", 'otel_llm_team="a"} or vector(1) or {x="', "team=support", 'a="b",,c="d"'])
def test_a_bad_match_is_refused_before_any_query(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        report.main(["--prometheus", "http://127.0.0.1:1", "--match", bad])
    assert exit_.value.code == 2
    assert "is not label matchers" in capsys.readouterr().err


@pytest.mark.prometheus
def test_text_report_fits_a_screen_and_never_shows_unpriced_as_zero(
        caseday: Any, capsys: pytest.CaptureFixture[str]) -> None:
    prometheus, truth = caseday
    assert report.main(["--prometheus", prometheus.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 20, "\n".join(lines)
    assert max(len(line) for line in lines) <= 120
    text = "\n".join(lines)
    assert "$0.0000" not in text
    assert f"{truth.unpriced} unpriced calls ({UNPRICED_MODEL} {truth.unpriced})" in text
    assert f"Tool fees not in the spend: {truth.unpriced_tool_runs} hosted tool runs (gpt-4.1 {truth.unpriced_tool_runs})" in text
    assert f"Day    ${truth.spend:,.2f} + {truth.unpriced} unpriced calls" in text
    assert text.count("Models ") == 1  # no repeated 24h / month tables


@pytest.mark.prometheus
def test_a_day_in_another_time_zone_is_a_different_window(caseday: Any, capsys: pytest.CaptureFixture[str]) -> None:
    prometheus, truth = caseday
    # In Tokyo (UTC+9) the UTC day straddles two local days; together they hold all of it.
    tokyo = [_json(prometheus.url, capsys, "--tz", "Asia/Tokyo", "--period", (YESTERDAY + timedelta(days=n)).isoformat())
             for n in (0, 1)]
    assert 0 < tokyo[0]["day"]["spend_usd"] < truth.spend
    assert tokyo[0]["day"]["spend_usd"] + tokyo[1]["day"]["spend_usd"] == pytest.approx(truth.spend, rel=1e-9)


@pytest.mark.prometheus
def test_doctor_finds_the_calls_after_the_app_exited(caseday: Any) -> None:
    prometheus, truth = caseday  # the day's series ended hours ago: stale for a plain instant query
    findings = doctor.run_checks({"OTEL_METRICS_EXPORTER": "prometheus"}, set(), {"otel_llm"}, lambda h, p: True,
                                 prometheus.url)
    messages = [f.message for f in findings]
    assert f"Prometheus has seen {truth.calls} LLM calls" in messages, messages
    assert (f"model '{UNPRICED_MODEL}' at {SERVER} has {truth.unpriced} unpriced calls: add it to the OTEL_LLM_PRICES file"
            in messages)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "fifty"])
def test_a_bad_budget_flag_is_refused_naming_it(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        report.main(["--prometheus", "http://127.0.0.1:9", f"--budget-daily={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("otel-llm report: error: argument --budget-daily: must be a ")
    assert "OVER BUDGET" not in err


@pytest.mark.parametrize(("text", "why"), [("-5", "a positive"), ("0", "a positive"), ("'50'", "a number"),
                                          (".nan", "a positive")])
def test_a_bad_budget_in_the_file_is_refused_naming_file_and_key(
        tmp_path: Path, text: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(f"global:\n  daily: 50\n  monthly: {text}\n", encoding="utf-8")
    assert report.main(["--prometheus", "http://127.0.0.1:9", "--budgets", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"otel-llm report: error: {path}: global.monthly: must be {why}")


def test_growth_counts_a_new_series_whole_and_carries_an_hour() -> None:
    assert growth("m_total", 3600, ["a", "b"]) == (
        "sum by (a, b) ((last_over_time(m_total[3600s]) - last_over_time(m_total[1h] offset 3600s)) >= 0"
        " or last_over_time(m_total[3600s]))"
    )


def test_periods_follow_the_time_zone() -> None:
    from zoneinfo import ZoneInfo

    from otel_llm.cli.reportdata import daily_periods, month_elapsed_ratio, report_periods

    now = datetime(2026, 3, 30, 1, 30, tzinfo=timezone.utc)  # Paris moved to summer time on the 29th
    day, month = report_periods("yesterday", now, ZoneInfo("Europe/Paris"))
    assert (day.label, day.seconds) == ("2026-03-29", 23 * 3600)
    assert month.start == datetime(2026, 2, 28, 23, 0, tzinfo=timezone.utc)
    days = daily_periods(month, ZoneInfo("Europe/Paris"))
    assert [d.label for d in days][::28] == ["2026-03-01", "2026-03-29"]
    assert days[-1].end == day.end
    assert report_periods("2026-03-01", now, timezone.utc)[0].seconds == 86400
    with pytest.raises(ValueError, match="has not started yet"):
        report_periods(str(date(2026, 4, 2)), now, timezone.utc)
    with pytest.raises(ValueError, match="use yesterday, today, 24h or a date YYYY-MM-DD"):
        report_periods("last-week", now, timezone.utc)
    # Read on the 1st, yesterday's report closes the whole previous month: all of it elapsed, not none.
    first = datetime(2026, 12, 1, 0, 30, tzinfo=timezone.utc)
    day, month = report_periods("yesterday", first, timezone.utc)
    assert (day.label, month.label, month_elapsed_ratio(month, timezone.utc)) == ("2026-11-30", "2026-11 to date", 1.0)
    assert month_elapsed_ratio(report_periods("24h", first, timezone.utc)[1], timezone.utc) == pytest.approx(0.5 / 24 / 31)


def test_an_empty_prometheus_gives_a_report_not_an_error() -> None:
    from otel_llm.cli import report_html
    from otel_llm.cli.reportdata import build, daily_periods, report_periods

    now = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    periods = report_periods("yesterday", now, timezone.utc)
    days = daily_periods(periods[1], timezone.utc)
    empty = build({}, periods, days, now, timezone.utc, {"daily": None, "monthly": None})
    text = report.format_text(empty)
    assert text.splitlines()[1] == "Day    $0.0000  (no daily budget)"
    assert "Not in the spend" not in text and "Errors" not in text
    page = report_html.render(empty)
    assert "no budget set" in page and "Every call was priced and metered." in page
    assert len(empty["days"]) == 29 and empty["chargeback"] == []


def test_html_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from otel_llm.cli import report_html
    from otel_llm.cli.reportdata import build, report_periods

    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # as if the extra were not installed
    now = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    periods = report_periods("yesterday", now, timezone.utc)
    empty = build({}, periods, periods[:1], now, timezone.utc, {"daily": None, "monthly": None})
    with pytest.raises(ImportError, match=r"pip install 'otel-llm\[report\]'"):
        report_html.render(empty)


@pytest.mark.prometheus
def test_every_shared_query_is_valid_and_the_range_ones_equal_the_day(caseday: Any) -> None:
    """The queries a dashboard would draw (cli/queries.SHARED), with its range set to the day."""
    from otel_llm.cli.queries import RULES, SHARED, WINDOW, Prometheus

    prometheus, truth = caseday
    prom = Prometheus(prometheus.url)
    day_end = datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time(), timezone.utc)
    rule_based = {name for name, expr in SHARED.items() if any(rule in expr for rule in RULES.values())}
    got = {name: prom.query(expr.replace(WINDOW, "1d"), None if name in rule_based else day_end)
           for name, expr in SHARED.items()}  # PrometheusError on any invalid query
    assert {name for name, rows in got.items() if not rows} == rule_based - {"budget_daily", "budget_monthly"}
    assert got["spend"][0][1] == pytest.approx(truth.spend, rel=1e-9)
    assert got["prompt_cache_hit_ratio"][0][1] == pytest.approx(truth.tokens["cache_read"] / truth.tokens["input"])
    assert {r[0]["gen_ai_request_model"]: r[1] for r in got["failed_calls_by_model"]} == truth.failed
    assert got["budget_daily"][0][1] == 50.0


def test_every_rule_name_the_cli_reads_is_recorded_by_the_shipped_rules() -> None:
    import yaml

    from otel_llm.cli.queries import RULES

    rules_dir = Path(__file__).resolve().parents[2] / "prometheus" / "rules"
    recorded = {rule["record"] for path in rules_dir.glob("*.yml")
                for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", [])
                for rule in group["rules"] if "record" in rule}
    assert set(RULES.values()) - recorded == set()


def _report_figures(day: dict[str, Any]) -> dict[str, Any]:
    """The report's figures of a period under their names in cli/queries (FIGURES, RATIOS)."""
    reliability = day["reliability"]
    rows = {f"spend_by_{dim}": {r["name"]: r["spend_usd"] for r in day["by"][dim] if r["spend_usd"]}
            for dim in ("model", "user", "team", "api_key", "feature")}
    return rows | {
        "spend": day["spend_usd"],
        "spend_by_prompt_size": {r["prompt_size"]: r["spend_usd"] for r in day["routing"]},
        "reference_by_prompt_size": {r["prompt_size"]: r["reference_usd"] for r in day["routing"]
                                     if r["reference_usd"] is not None},
        "prompt_cache_hit_ratio": day["cache_hit_ratio"],
        "response_cache_hit_ratio": day["response_cache_hit_ratio"],
        "cache_savings_by_kind": {k: v for k, v in (("prompt", day["cache_savings_usd"]),
                                                    ("response", day["response_cache_savings_usd"])) if v},
        "unpriced_calls_by_model": day["unpriced_by_model"],
        "unmetered_calls_by_model": day["unmetered_by_model"],
        "unpriced_tool_runs_by_model": day["unpriced_tool_runs_by_model"],
        "failed_calls_by_model": {r["model"]: r["errors"] for r in reliability if r["errors"]},
        "http_429_by_model": {r["model"]: r["http_429"] for r in reliability if r["http_429"]},
    }


@pytest.mark.prometheus
def test_dashboard_panels_show_the_report_figures(caseday: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19.2: every Grafana panel that shows a figure of the report, with its range set to the
    report's day and its variables to all, gives the report's figure, name by name."""
    import importlib.util

    from otel_llm.cli.queries import FIGURES, RATIOS, WINDOW, Prometheus, figure

    spec = importlib.util.spec_from_file_location("grafana_build", Path(__file__).resolve().parents[2] / "grafana/build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    prometheus, _ = caseday
    expected = _report_figures(_json(prometheus.url, capsys)["day"])
    names = {figure(name, WINDOW, where): name for name in expected for where in build.FILTERS}
    assert set(expected) <= set(FIGURES) | set(RATIOS)
    prom = Prometheus(prometheus.url)
    day_end = datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time(), timezone.utc)
    shown: set[str] = set()
    for dashboard in build.DASHBOARDS.values():
        for panel in json.loads(build.render(dashboard))["panels"]:
            for target in panel.get("targets", []):
                name = names.get(target.get("expr", ""))
                if name is None:
                    continue
                expr = target["expr"].replace("$__range", "86400s").replace("$env", ".*").replace("$model", ".*")
                rows = prom.query(expr, day_end)
                by = FIGURES[name][1] if name in FIGURES else ()
                got: Any = ({labels.get(by[0], "(none)"): value for labels, value in rows if value} if by
                            else rows[0][1] if rows else None)
                assert got == pytest.approx(expected[name], rel=1e-9), f"{panel['title']}: {name}"
                shown.add(name)
    assert shown == set(expected)


def test_the_errors_line_names_models_only_where_there_are_some() -> None:
    """Retried 429s and no failed call (the demo's day): no empty "()" after "0 ... failed"."""
    summary = {"calls": 60, "reliability": [
        {"model": "gemini-2.5-flash", "calls": 20, "errors": 0, "error_types": {}, "http_429": 2},
        {"model": "gpt-4.1", "calls": 40, "errors": 0, "error_types": {}, "http_429": 3},
    ]}
    assert report._errors_line(summary) == "Errors 0 of 60 calls failed; 5 HTTP 429 (gpt-4.1 3, +1 more)"
