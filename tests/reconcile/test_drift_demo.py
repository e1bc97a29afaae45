"""`otel-llm reconcile --demo`: one worker without otel_llm, and LLMSpendNotReconciled fires from a real
Prometheus for exactly the share that worker spent."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from otel_llm.cli import reconcile
from otel_llm.cli.procs import find_binary


@pytest.mark.prometheus
@pytest.mark.skipif(find_binary("prometheus") is None, reason="prometheus not installed: run scripts/install-tools")
def test_drift_demo_fires_the_alert_for_the_worker_share(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(Path(tempfile.gettempdir()).glob("otel-llm-reconcile-demo-*"))
    assert reconcile.main(["--demo"]) == 0
    # Its Prometheus, config and data are its own: nothing is left behind in the temporary directory.
    assert set(Path(tempfile.gettempdir()).glob("otel-llm-reconcile-demo-*")) == before
    out = capsys.readouterr().out
    assert "Alert firing: LLMSpendNotReconciled [warning] Recorded LLM spend explains only" in out
    found = re.search(r"The uninstrumented worker spent \$([\d,.]+)\.$", out, flags=re.MULTILINE)
    assert found and float(found[1].replace(",", "")) > 0


@pytest.mark.prometheus
@pytest.mark.skipif(find_binary("prometheus") is None, reason="prometheus not installed: run scripts/install-tools")
def test_drift_demo_figures() -> None:
    from otel_llm.cli.billing import drift_demo

    result = drift_demo.run(calls=12, uninstrumented=4)
    assert result.alert is not None
    summary = result.summary
    assert summary["difference_usd"] == pytest.approx(result.uninstrumented_usd, rel=1e-3)
    assert float(result.alert["value"]) == pytest.approx(summary["explained_share"], rel=1e-3)
    assert [row.model for row in result.rows if row.cause != "ok"] == ["gpt-4.1"]
