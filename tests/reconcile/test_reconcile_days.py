"""Day by day: three past days in a real Prometheus (backfilled with promtool, two processes, one born
mid-day) against the simulator's bill of the same calls; each day's missing share is found exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otel_llm.cli import reconcile
from otel_llm.simulator import Simulator, SimulatorConfig
from otel_llm.simulator.usage import Usage

sys.path.insert(0, str(Path(__file__).parents[1] / "stack"))
from stackservers import running_prometheus, tool

ADMIN = "sk-admin-days"
CALL = Usage(prompt_tokens=1000, completion_tokens=100)
CALL_USD = (1000 * 2.00 + 100 * 8.00) / 1e6  # the simulator's gpt-4.1 price
UNRECORDED_EVERY = {0: None, 1: 10, 2: 50}  # day -> one call in N bypasses the telemetry


def _series(first_day: datetime) -> tuple[str, list[tuple[float, str]]]:
    """The OpenMetrics text of our counters, and the calls as billed (timestamp, process)."""
    totals: dict[str, list[float]] = {"a": [0.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0]}  # cost, input, output
    samples: dict[str, list[str]] = {"cost": [], "input": [], "output": []}
    billed: list[tuple[float, str]] = []
    for day, every in UNRECORDED_EVERY.items():
        start = (first_day + timedelta(days=day)).timestamp()
        for minute in range(0, 1440, 5):
            at = start + minute * 60 + 30
            # Process b starts at noon of day 1 and takes every other call from then on.
            process = "b" if (day, minute) >= (1, 720) and minute % 10 == 0 else "a"
            billed.append((at, process))
            if not (every and (minute // 5) % every == 0):
                totals[process][0] += CALL_USD
                totals[process][1] += CALL.prompt_tokens
                totals[process][2] += CALL.completion_tokens
            for name in ("a", "b") if (day, minute) >= (1, 720) else ("a",):
                labels = f'gen_ai_request_model="gpt-4.1",service_instance_id="{name}"'
                samples["cost"].append(f"otel_llm_cost_USD_total{{{labels}}} {totals[name][0]!r} {at:.0f}")
                samples["input"].append(
                    f'otel_llm_tokens_total{{{labels},gen_ai_token_type="input"}} {totals[name][1]!r} {at:.0f}')
                samples["output"].append(
                    f'otel_llm_tokens_total{{{labels},gen_ai_token_type="output"}} {totals[name][2]!r} {at:.0f}')
    text = ["# TYPE otel_llm_cost_USD counter", *samples["cost"], "# TYPE otel_llm_tokens counter",
            *samples["input"], *samples["output"], "# EOF"]
    return "\n".join(text) + "\n", billed


@pytest.mark.prometheus
@pytest.mark.skipif(tool("prometheus") is None or tool("promtool") is None,
                    reason="prometheus / promtool not installed: run scripts/install-tools")
def test_each_day_missing_share_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=5)
    text, billed = _series(first)
    source = tmp_path / "series.om"
    source.write_text(text, encoding="utf-8")
    data = tmp_path / "prometheus-data"
    data.mkdir()
    done = subprocess.run([str(tool("promtool")), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    with Simulator(config=SimulatorConfig(latency_scale=0.0)) as sim, running_prometheus(tmp_path) as prometheus:
        for at, _ in billed:
            sim.app.billing.record("completions", "", "sk-app", "gpt-4.1", CALL, at=at)
        deadline = time.monotonic() + 30  # the backfilled blocks are loaded at start; wait until queryable
        while not prometheus.query("count(otel_llm_cost_USD_total)")["result"] and time.monotonic() < deadline:
            time.sleep(0.5)
        monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN)
        code = reconcile.main(["--base-url", sim.base_url, "--prometheus", prometheus.url, "--json",
                               "--since", first.strftime("%Y-%m-%d"),
                               "--until", (first + timedelta(days=2)).strftime("%Y-%m-%d")])
        out, err = capsys.readouterr()
    assert code == 0, err
    rows = {row["date"]: row for row in json.loads(out)["rows"]}
    assert list(rows) == [(first + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(3)]
    for day, every in UNRECORDED_EVERY.items():
        row = rows[(first + timedelta(days=day)).strftime("%Y-%m-%d")]
        calls = sum(1 for at, _ in billed if first.timestamp() + day * 86400 <= at < first.timestamp() + (day + 1) * 86400)
        assert row["billed_cost_usd"] == pytest.approx(calls * CALL_USD, rel=1e-9)
        assert row["billed_input_tokens"] == calls * 1000
        unrecorded = sum(1 for minute in range(0, 1440, 5) if every and (minute // 5) % every == 0)
        share = unrecorded / calls
        assert row["difference_share"] == pytest.approx(share, rel=1e-3, abs=1e-9), (day, row)
        assert row["recorded_input_tokens"] == pytest.approx(calls * 1000 * (1 - share), rel=1e-9)
        assert row["cause"] == ("ok" if not every else "tokens_missing")
