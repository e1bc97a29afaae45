"""`otel-llm demo` as a user runs it: a small workload still ends in the alert, the output carries no
traceback, and --keep says exactly what still runs (with PIDs) and what stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otel_llm.cli import demo
from otel_llm.cli.procs import find_binary, http_ok

needs_binaries = pytest.mark.skipif(
    find_binary("prometheus") is None or find_binary("prometheus-alertmanager", "alertmanager") is None,
    reason="prometheus / alertmanager binaries not installed: run scripts/install-tools",
)
OTEL_LLM = str(Path(sys.executable).with_name("otel-llm"))


@pytest.mark.prometheus
@needs_binaries
def test_small_demo_with_keep_fires_prints_no_traceback_and_names_what_runs() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run([OTEL_LLM, "demo", "--calls", "40", "--keep"], capture_output=True, text=True,
                          timeout=300, env=env)
    pids = {name: int(pid) for name, pid in re.findall(r"^  (\w+): http://\S+ \(pid (\d+)\)$", done.stdout, re.M)}
    workdir = re.search(r"their files: (\S+)", done.stdout)
    try:
        output = done.stdout + done.stderr
        assert "Traceback" not in output, output
        assert done.returncode == 0, output
        assert "the daily budget alert fired" in done.stdout
        assert set(pids) == {"prometheus", "alertmanager"}
        for name, pid in pids.items():
            os.kill(pid, 0)  # alive: raises if not
            url = re.search(rf"^  {name}: (http://\S+)", done.stdout, re.M)
            assert url and http_ok(f"{url.group(1)}/-/ready"), name
        running = done.stdout.split("Still running", 1)[1].split("Stopped with this command", 1)[0]
        assert "webhook" not in running and "simulator" not in running
        stopped = re.search(r"^Stopped with this command.*: (.*)$", done.stdout, re.M)
        assert stopped and {"webhook", "simulator", "canary"} <= set(stopped.group(1).split(", "))
        assert f"kill {pids['prometheus']} {pids['alertmanager']}" in done.stdout
    finally:
        for pid in pids.values():
            try:
                os.killpg(pid, signal.SIGTERM)  # each child leads its own process group
            except ProcessLookupError:
                pass
        if workdir:
            shutil.rmtree(workdir.group(1), ignore_errors=True)


def test_budget_scales_with_the_workload() -> None:
    assert demo.scaled_budget(300) == pytest.approx(0.05)
    assert demo.scaled_budget(40) == pytest.approx(0.05 * 40 / 300, abs=1e-6)
    assert demo.build_parser().parse_args([]).budget_daily is None


def _result(spend: float, budget: float, fired: bool) -> demo.DemoResult:
    report = {"last_24h": {}, "month_to_date": {}, "forecast": {}}
    return demo.DemoResult({}, [], report, [], fired, 12.0, {"prometheus": "http://127.0.0.1:1"}, "/tmp/x",
                           {"prometheus": 1}, spend, budget)


def test_a_budget_above_the_spend_is_explained_not_a_failure(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: _result(0.01, 5.0, False))
    monkeypatch.setattr(demo.report_mod, "format_text", lambda report, tty: "REPORT")
    assert demo.main(["--budget-daily", "5"]) == 0
    out = capsys.readouterr().out
    assert ("none expected: the workload spent $0.0100, under the daily budget $5.0000; lower --budget-daily "
            "or raise --calls to see it fire") in out


def test_spend_past_the_budget_without_an_alert_is_a_failure(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: _result(0.2, 0.05, False))
    monkeypatch.setattr(demo.report_mod, "format_text", lambda report, tty: "REPORT")
    assert demo.main([]) == 1
    assert "NO critical alert within the wait, although the workload spent $0.2000 of a $0.0500" in capsys.readouterr().out


def test_a_tiny_workload_is_warned_about_before_it_runs(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: _result(0.0001, 0.0002, False))
    monkeypatch.setattr(demo.report_mod, "format_text", lambda report, tty: "REPORT")
    demo.main(["--calls", "1"])
    assert "with 1 call the spend may stay under the scaled daily budget $0.0002" in capsys.readouterr().err
