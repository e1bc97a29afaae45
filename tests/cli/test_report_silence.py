"""A report of $0 is only a figure when telemetry arrived: every instrumented process exports its start
time at each collection, calls or not. A period in which none reported (a wrong --prometheus, an app
that was down, a pipeline that never delivered) is said to be so, on a real Prometheus, instead of
printing $0.0000 as if nothing had been spent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otel_llm.cli import report
from otel_llm.cli.queries import PROCESS_START

MIDNIGHT = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _prometheus(workdir: Path, openmetrics: str | None) -> Iterator[str]:
    from caseday import backfill
    from stackservers import running_prometheus, tool

    if tool("prometheus") is None or tool("promtool") is None:
        pytest.skip("prometheus/promtool not installed: run scripts/install-tools (CI does)")
    if openmetrics is not None:
        backfill(openmetrics, workdir / "prometheus-data", str(tool("promtool")))
    with running_prometheus(workdir, extra_args=["--storage.tsdb.retention.time=45d"]) as running:
        yield running.url


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _prometheus(tmp_path_factory.mktemp("empty"), None)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One instrumented process up all of yesterday, reporting its start time every minute, no call made;
    stopped a minute before midnight."""
    started = (MIDNIGHT - timedelta(days=1, hours=1)).timestamp()
    lines = [f"# TYPE {PROCESS_START} gauge"]
    lines += [f'{PROCESS_START}{{instance="pod-0",job="chat"}} {started} {started + 60 * m}' for m in range(25 * 60)]
    yield from _prometheus(tmp_path_factory.mktemp("idle"), "\n".join([*lines, "# EOF"]) + "\n")


@pytest.mark.prometheus
def test_a_prometheus_no_process_reported_to_reads_as_no_telemetry_not_as_no_spend(
    empty: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    html = tmp_path / "report.html"
    assert report.main(["--prometheus", empty, "--html", str(html)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].startswith("! No instrumented process reported to " + empty)
    assert "$0 there is not a measured zero" in " ".join(line.removeprefix("! ").strip() for line in lines[1:4])
    assert "No instrumented process reported" in captured.err
    assert "No instrumented process reported" in html.read_text(encoding="utf-8")
    assert report.main(["--prometheus", empty, "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["day"]["processes_seen"] == 0 and got["month_to_date"]["processes_seen"] == 0


@pytest.mark.prometheus
def test_an_idle_app_that_reported_is_a_measured_zero(idle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--prometheus", idle, "--format", "json"]) == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert got["day"]["processes_seen"] == 1 and got["day"]["spend_usd"] == 0
    assert "No instrumented process" not in captured.err
    # Today it has not reported: today is silent, and so is its month only when today is the 1st.
    assert report.main(["--prometheus", idle, "--format", "json", "--period", "today"]) == 0
    captured = capsys.readouterr()
    today = json.loads(captured.out)
    assert today["day"]["processes_seen"] == 0
    assert today["month_to_date"]["processes_seen"] == (0 if MIDNIGHT.day == 1 else 1)
    silent = f"in {MIDNIGHT:%Y-%m-%d}" + (f" or {MIDNIGHT:%Y-%m} to date" if MIDNIGHT.day == 1 else ", so")
    assert silent in captured.err
