"""A process restarted under the same job and instance inside a report's period (a container restarted
in its pod) writes its series again from zero. The report and the reconciliation with the provider's
bill still add up to what was spent: they read the restarts from the start time every process reports
and sum such a process run by run (cli/queries.exact_growth), against a real Prometheus backfilled
with promtool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from caseday import backfill, caseday_prometheus

from otel_llm.cli import report
from otel_llm.cli.billing import recorded
from otel_llm.cli.queries import (
    PROCESS_START,
    Prometheus,
    PrometheusError,
    exact_growth,
    figure,
    growth,
    reporting,
    restart_counts,
    restarts,
)

YESTERDAY = datetime.now(timezone.utc).date() - timedelta(days=1)
COST = "otel_llm_cost_USD_total"
# The period read below: (START, END], two days back on a whole hour, one sample a minute.
START = datetime.combine(YESTERDAY - timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=6)
END = START + timedelta(minutes=10)


def _at(minute: float) -> float:
    """The Unix time `minute` minutes after START (negative: before it), to the millisecond."""
    return round(START.timestamp() + 60 * minute, 3)


# A process crash-looping under one id (a container that dies every few seconds, CrashLoopBackOff):
# the run going at START, then 150 runs of two seconds, three seconds apart, each spending a little.
CRASH_RUNS = 150


def _crash_loop() -> list[tuple[int, dict[float, dict[str, float]]]]:
    runs: list[tuple[int, dict[float, dict[str, float]]]] = [(4000, {-1: {"a": 1.0}, 0.5: {"a": 1.5}})]
    for k in range(CRASH_RUNS):
        minute, spent = 1 + k / 20, 0.01 * (k % 5 + 1)
        runs.append((5000 + k, {minute: {"a": spent / 2}, minute + 1 / 30: {"a": spent}}))
    return runs


# Per process (job, instance): its runs, each (start time it reports, {minute: {model: cost so far}}).
# What each spent in (START, END] is written beside it, by model.
RUNS: dict[tuple[str, str], list[tuple[int, dict[float, dict[str, float]]]]] = {
    # The new run's first value is above the old run's last: no counter ever goes down.
    ("chat", "pod-0"): [(1000, {-1: {"a": 10.0}, 2: {"a": 15.0}, 4: {"a": 20.0}}),
                        (2000, {6: {"a": 25.0}, 9: {"a": 30.0}})],
    # Restarted around the period's start: the old run's last sample before it, the new run's first inside.
    ("chat", "pod-1"): [(1000, {-3: {"a": 5.0, "b": 7.0}}),
                        (2000, {1: {"b": 9.0}, 5: {"a": 1.0, "b": 12.0}})],
    # Twice in the period, and a model only the middle run used.
    ("chat", "pod-2"): [(1000, {-1: {"a": 50.0}, 3: {"a": 55.0}}),
                        (2000, {4: {"a": 4.0, "b": 2.5}, 6: {"a": 6.0, "b": 3.0}}),
                        (3000, {8: {"a": 1.0}, 10: {"a": 2.0}})],
    # Restarted, then gone for good more than five minutes before the period ends.
    ("chat", "pod-3"): [(1000, {-1: {"a": 8.0}, 1: {"a": 9.0}}), (2000, {2: {"a": 0.5}, 3: {"a": 0.75}})],
    # Steady, under the same instance name as a restarted process of another job: left to the one query.
    ("batch", "pod-0"): [(1000, {-1: {"a": 100.0}, 5: {"a": 110.0}, 10: {"a": 120.0}})],
    # Restarted an hour before the period: nothing to part inside it.
    ("batch", "pod-9"): [(500, {-70: {"b": 1.0}}), (900, {-60: {"b": 2.0}, 0: {"b": 2.0}, 10: {"b": 4.5}})],
    ("worker", "pod-c"): _crash_loop(),
}
SPENT = {
    ("chat", "pod-0"): {"a": 10.0 + 30.0},
    ("chat", "pod-1"): {"a": 1.0, "b": 12.0},
    ("chat", "pod-2"): {"a": 5.0 + 6.0 + 2.0, "b": 3.0},
    ("chat", "pod-3"): {"a": 1.0 + 0.75},
    ("batch", "pod-0"): {"a": 20.0},
    ("batch", "pod-9"): {"b": 2.5},
    ("worker", "pod-c"): {"a": 0.5 + sum(0.01 * (k % 5 + 1) for k in range(CRASH_RUNS))},
}


def _openmetrics() -> str:
    lines = [f"# TYPE {COST.removesuffix('_total')} counter"]
    costs: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    starts: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for (job, instance), runs in RUNS.items():
        for started, samples in runs:
            for minute, by_model in samples.items():
                starts.setdefault((job, instance), []).append((_at(minute), started))
                for model, usd in by_model.items():
                    costs.setdefault((job, instance, model), []).append((_at(minute), usd))
    for (job, instance, model), points in sorted(costs.items()):
        lines += [f'{COST}{{gen_ai_request_model="{model}",instance="{instance}",job="{job}"}} {usd} {ts}'
                  for ts, usd in sorted(points)]
    lines.append(f"# TYPE {PROCESS_START} gauge")
    for (job, instance), points in sorted(starts.items()):
        lines += [f'{PROCESS_START}{{instance="{instance}",job="{job}"}} {value} {ts}' for ts, value in sorted(points)]
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def runs_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    from stackservers import running_prometheus, tool

    promtool = tool("promtool")
    if promtool is None or tool("prometheus") is None:
        pytest.skip("prometheus/promtool not installed: run scripts/install-tools (CI does)")
    workdir = tmp_path_factory.mktemp("restarts")
    backfill(_openmetrics(), workdir / "prometheus-data", promtool)
    with running_prometheus(workdir) as running:
        prometheus = Prometheus(running.url)
        from stackservers import wait_until

        wait_until(lambda: bool(prometheus.query(f"count(last_over_time({COST}[3d]))")), 30, "the backfilled blocks")
        yield prometheus


def _by_process(samples: list[tuple[dict[str, str], float]]) -> dict[tuple[str, str, str], float]:
    return {(labels["job"], labels["instance"], labels["gen_ai_request_model"]): value
            for labels, value in samples if value}


def _flat(spent: dict[tuple[str, str], dict[str, float]]) -> dict[tuple[str, str, str], float]:
    return {(job, instance, model): usd for (job, instance), models in spent.items() for model, usd in models.items()}


@pytest.mark.prometheus
def test_each_run_of_a_restarted_process_is_added(runs_prometheus: Prometheus) -> None:
    by = ["job", "instance", "gen_ai_request_model"]
    got = _by_process(exact_growth(runs_prometheus, COST, START, END, by))
    assert got == pytest.approx(_flat(SPENT))
    # The two ends alone, as before: every restarted process is short, the steady ones exact.
    ends = _by_process(runs_prometheus.query(growth(COST, (END - START).total_seconds(), by), END))
    assert {k: ends[k] for k in got if k[0] == "batch"} == pytest.approx({k: v for k, v in got.items() if k[0] == "batch"})
    for short in (("chat", "pod-0", "a"), ("chat", "pod-1", "b"), ("chat", "pod-2", "a")):
        assert ends[short] < got[short], short


@pytest.mark.prometheus
def test_restarts_are_read_from_the_start_time_and_cut_between_the_runs(runs_prometheus: Prometheus) -> None:
    found = restarts(runs_prometheus, START, END)
    assert set(found) == {("chat", "pod-0"), ("chat", "pod-1"), ("chat", "pod-2"), ("chat", "pod-3"), ("worker", "pod-c")}
    assert len(found[("worker", "pod-c")]) == CRASH_RUNS  # a crash loop is restarts, however many
    assert found[("chat", "pod-0")] == [START + timedelta(minutes=5)]  # halfway between minutes 4 and 6
    assert found[("chat", "pod-1")] == [START]  # halfway is before the period: its old run spent nothing in it
    assert found[("chat", "pod-2")] == [START + timedelta(minutes=3.5), START + timedelta(minutes=7)]
    # Read a day at a time: a day's end falling anywhere around a restart finds the same cuts.
    for minute in (3.5, 4, 5, 6, 9):
        longer = restarts(runs_prometheus, START + timedelta(minutes=minute) - timedelta(days=1), END)
        assert {key: cuts for key, cuts in longer.items() if key[1] != "pod-1"} == {
            **{key: cuts for key, cuts in found.items() if key[1] != "pod-1"},
            ("batch", "pod-9"): [START - timedelta(minutes=65)]}, minute
        assert longer[("chat", "pod-1")] == [START - timedelta(minutes=1)]  # no longer clamped to the period's start
    # A period with no restart in it: no process to read run by run, one query as before.
    assert restarts(runs_prometheus, START - timedelta(minutes=50), START - timedelta(minutes=20)) == {}


@pytest.mark.prometheus
def test_a_period_split_anywhere_adds_up_to_the_whole(runs_prometheus: Prometheus) -> None:
    by = ["gen_ai_request_model"]
    whole = {labels["gen_ai_request_model"]: v for labels, v in exact_growth(runs_prometheus, COST, START, END, by)}
    for minute in (1, 3.5, 4, 5, 7, 9):
        middle = START + timedelta(minutes=minute)
        parts: dict[str, float] = {}
        for since, until in ((START, middle), (middle, END)):
            for labels, value in exact_growth(runs_prometheus, COST, since, until, by):
                parts[labels["gen_ai_request_model"]] = parts.get(labels["gen_ai_request_model"], 0.0) + value
        assert parts == pytest.approx(whole), minute


@pytest.mark.prometheus
def test_reconciliation_reads_every_run_of_the_day(runs_prometheus: Prometheus) -> None:
    """`otel-llm reconcile` compares the bill with the same exact growth: a restart loses nothing."""
    midnight = START.replace(hour=0)
    lines, _ = recorded.fetch(runs_prometheus.url, [midnight], END)
    got = {line.model: line.figures.cost_usd for line in lines}
    # The whole day: every series born in it, so each run counts whole, before and after START.
    every_run: dict[str, float] = {}
    for runs in RUNS.values():
        for _, samples in runs:
            for model, usd in samples[max(samples)].items():
                every_run[model] = every_run.get(model, 0.0) + usd
    assert got == pytest.approx(every_run)


@pytest.mark.parametrize("start_times", [
    [n % 2 + 1000.0 for n in range(240)],  # two live processes, their exports interleaved for an hour
    [1000.0, 1000.0, 2000.0, 1000.0, 1000.0],  # a new process while the old one still exports, once
], ids=["interleaved", "overlap"])
def test_two_writers_under_one_id_are_named_not_summed(start_times: list[float]) -> None:
    """A start time that goes back is not a restart (a new process starts later) but two processes
    writing under one id, however few the changes: no sum can be exact, and the report says so
    instead of summing each run as if it had started from zero."""
    start = datetime(2026, 11, 29, tzinfo=timezone.utc)

    class Flipping(Prometheus):
        def query(self, promql: str, at: datetime | None = None) -> list[tuple[dict[str, str], float]]:
            return [({"job": "chat", "instance": "pod-0"}, 5.0)]

        def samples(self, promql: str, at: datetime | None = None) -> Any:
            t0 = start.timestamp()
            return [({}, [(t0 + 15 * (n + 1), value) for n, value in enumerate(start_times)])]

    with pytest.raises(PrometheusError, match=r"'pod-0'.*went back.*two processes write under one id.*service\.instance\.id"):
        restarts(Flipping("http://127.0.0.1:1"), start, start + timedelta(hours=1))


@pytest.mark.prometheus
def test_a_crash_loop_is_read_in_a_few_queries_not_one_per_restart(runs_prometheus: Prometheus) -> None:
    """150 restarts of one process in the period: its runs are read in batches (PromQL's `@`), so a
    month of a crash-looping container stays a report of seconds, not one query per run and figure."""
    sent: list[str] = []

    class Counting(Prometheus):
        def query(self, promql: str, at: datetime | None = None) -> list[tuple[dict[str, str], float]]:
            sent.append(promql)
            return super().query(promql, at)

    counting = Counting(runs_prometheus.url)
    restarted = restarts(counting, START, END)
    sent.clear()
    got = _by_process(exact_growth(counting, COST, START, END, ["job", "instance", "gen_ai_request_model"], restarted=restarted))
    assert got == pytest.approx(_flat(SPENT))
    restarts_in_period = sum(len(cuts) for cuts in restarted.values())
    assert restarts_in_period > CRASH_RUNS
    assert len(sent) <= 5, f"{len(sent)} queries for {restarts_in_period} restarts"


@pytest.fixture(scope="module")
def restarted_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with caseday_prometheus(tmp_path_factory.mktemp("caseday-restart"), YESTERDAY, restart=True) as running:
        yield running


@pytest.mark.prometheus
def test_report_of_a_day_with_a_restart_equals_what_was_written(
    restarted_day: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    """The case's day with app-2 restarted at 13:00 under the same instance id: every figure exact."""
    prometheus, truth = restarted_day
    assert report.main(["--prometheus", prometheus.url, "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    day = got["day"]
    assert day["spend_usd"] == pytest.approx(truth.spend, rel=1e-9)
    # The month to date ends with the day, however many days it spans: read a day at a time, the same.
    assert got["month_to_date"]["spend_usd"] == pytest.approx(truth.spend, rel=1e-9)
    for dim in ("model", "user", "team", "api_key", "feature"):
        table = {row["name"]: row["spend_usd"] for row in day["by"][dim] if row["spend_usd"]}
        assert table == pytest.approx(dict(truth.by[dim]), rel=1e-9), dim
    assert day["tokens"] == pytest.approx(dict(truth.tokens))
    assert day["calls"] == truth.calls
    assert day["unpriced_calls"] == truth.unpriced


@pytest.mark.prometheus
def test_the_dashboard_lists_the_restart_its_range_figures_miss(restarted_day: Any) -> None:
    """A panel reads a figure at the range's two ends and cannot see app-2's restart at 13:00 (the report
    above reads it exactly): the cost dashboard lists the restarts per process beside its figures, and
    how many processes reported, so neither a short figure nor a $0 is silent."""
    running, truth = restarted_day
    prometheus = Prometheus(running.url)
    day_end = datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)

    def counts(window: str, at: datetime) -> dict[tuple[str, str], float]:
        return {(labels["job"], labels["instance"]): value for labels, value in prometheus.query(restart_counts(window), at)}

    assert counts("1d", day_end) == {("chatbot", "app-1"): 0, ("chatbot", "app-2"): 1, ("chatbot", "app-3"): 0}
    assert counts("12h", day_end - timedelta(hours=12)) == {("chatbot", "app-1"): 0, ("chatbot", "app-2"): 0}
    panel = prometheus.scalar(figure("spend", "1d"), day_end)
    assert panel is not None and panel < 0.9 * truth.spend  # what the listed restart costs the panel's figure
    assert prometheus.scalar(reporting("1d"), day_end) == 3
    assert prometheus.scalar(reporting("1h"), day_end - timedelta(days=3)) == 0  # nothing reported: 0, not empty
