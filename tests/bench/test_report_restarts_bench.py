"""`make bench-report` still measures what it says: the report it times reads the month it wrote
exactly. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report_restarts  # noqa: E402
from otel_llm.cli.procs import find_binary  # noqa: E402


@pytest.mark.prometheus
@pytest.mark.skipif(find_binary("promtool") is None, reason="promtool not installed: run scripts/install-tools")
def test_the_crash_loop_bench_reads_its_month_exactly() -> None:
    result = report_restarts.measure(run_minutes=240)  # six runs a day: seconds, not a minute
    assert result["restarts_in_month_to_date"] >= 5  # on the 2nd of a month, a one-day month to date
    for period in ("day", "month_to_date"):
        assert result[period]["report_usd"] == pytest.approx(result[period]["written_usd"], abs=1e-9), period
    assert result["queries"] > 0
