"""`otel-llm demo` ends with the reconciliation line, and with full instrumentation the recorded spend
explains the simulators' whole bill."""

from __future__ import annotations

import re

import pytest

from otel_llm.cli.procs import find_binary


@pytest.mark.prometheus
@pytest.mark.skipif(find_binary("prometheus") is None or find_binary("prometheus-alertmanager", "alertmanager") is None,
                    reason="prometheus / alertmanager not installed: run scripts/install-tools")
def test_demo_recorded_spend_explains_the_bill() -> None:
    from otel_llm.cli.demo import run_demo

    result = run_demo(calls=80, budget_daily=0.02)
    found = re.fullmatch(r"recorded spend explains (\d+\.\d)% of the billed spend \(\$([\d.,]+) of \$([\d.,]+)\)",
                         result.reconciliation)
    assert found, result.reconciliation
    recorded, billed = float(found[2].replace(",", "")), float(found[3].replace(",", ""))
    assert billed > 0 and recorded == pytest.approx(billed, rel=1e-3)
    assert float(found[1]) >= 99.9
