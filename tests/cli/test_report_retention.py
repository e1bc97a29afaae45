"""A Prometheus keeps its samples for a while only (15 days unless told otherwise): a period that starts
before the oldest it keeps cannot be read exactly, whatever the query. The report and the reconciliation
say so, naming the setting, instead of printing a month to date that silently starts in the middle of
the month. Against a real Prometheus started with a short retention."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otel_llm.cli import report
from otel_llm.cli.billing import BillingError, recorded
from otel_llm.cli.queries import Prometheus, retention_seconds


@pytest.mark.parametrize(("setting", "seconds"), [
    ("15d", 15 * 86400), ("45d", 45 * 86400), ("1y", 365 * 86400), ("2w3d", 17 * 86400), ("12h", 43200),
    ("1h30m", 5400), ("90s", 90), ("15d or 10GiB", 15 * 86400), ("10GiB", None), ("", None), ("soon", None),
])
def test_the_retention_setting_reads_as_prometheus_writes_it(setting: str, seconds: float | None) -> None:
    assert retention_seconds(setting) == seconds


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    from stackservers import running_prometheus, tool

    if tool("prometheus") is None:
        pytest.skip("prometheus not installed: run scripts/install-tools (CI does)")
    with running_prometheus(tmp_path_factory.mktemp("retention"), extra_args=["--storage.tsdb.retention.time=12h"]) as running:
        yield Prometheus(running.url)


@pytest.mark.prometheus
def test_a_period_older_than_the_retention_is_flagged_not_printed_as_exact(
    short_lived: Prometheus, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    assert short_lived.retention() == "12h"
    assert report.main(["--prometheus", short_lived.url, "--format", "json"]) == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert got["retention"]["setting"] == "12h"
    kept_from = datetime.fromisoformat(got["retention"]["kept_from"])
    assert abs((datetime.now(timezone.utc) - timedelta(hours=12) - kept_from).total_seconds()) < 120
    # Yesterday began more than 12 hours ago, and so did its month.
    assert got["day"]["beyond_retention"] is True
    assert got["month_to_date"]["beyond_retention"] is True
    assert got["forecast"]["beyond_retention"] is True
    assert "Not exact" in captured.err and "12h" in captured.err and "retention" in captured.err
    # The text report carries it under its header, and the HTML report at its top, not only standard error.
    html = tmp_path / "report.html"
    assert report.main(["--prometheus", short_lived.url, "--html", str(html)]) == 0
    text = capsys.readouterr().out.splitlines()
    warning = [line for line in text if line.startswith(("! ", "  "))]
    assert text[1:1 + len(warning)] == warning  # under the header, before the figures
    assert any(line.startswith("! Not exact") for line in warning)
    assert "--storage.tsdb.retention.time" in " ".join(warning) and max(len(line) for line in text) <= 120
    page = html.read_text(encoding="utf-8")
    found = re.search(r'<p class="warn" id="warning-\d">Not exact', page)
    assert found and found.start() < page.index("<h2>")


@pytest.mark.prometheus
def test_today_is_flagged_only_once_it_began_before_the_oldest_sample_kept(
    short_lived: Prometheus, capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if abs((midnight - (now - timedelta(hours=12))).total_seconds()) < 300:
        pytest.skip("run within five minutes of noon UTC: today's start and the retention's edge coincide")
    assert report.main(["--prometheus", short_lived.url, "--format", "json", "--period", "today"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["day"]["beyond_retention"] is (midnight < now - timedelta(hours=12))


@pytest.mark.prometheus
def test_a_prometheus_that_keeps_45_days_reads_the_month_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """compose.yaml's setting: yesterday and its month to date are inside it, so no warning anywhere."""
    from stackservers import running_prometheus, tool

    if tool("prometheus") is None:
        pytest.skip("prometheus not installed: run scripts/install-tools (CI does)")
    with running_prometheus(tmp_path, extra_args=["--storage.tsdb.retention.time=45d"]) as running:
        assert report.main(["--prometheus", running.url, "--format", "json"]) == 0
        captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert got["retention"]["setting"] == "45d"
    assert not got["day"]["beyond_retention"] and not got["month_to_date"]["beyond_retention"]
    assert not got["forecast"]["beyond_retention"]
    assert "Not exact" not in captured.err


@pytest.mark.prometheus
def test_reconciling_a_day_prometheus_no_longer_keeps_is_refused(short_lived: Prometheus) -> None:
    """Its calls are gone: comparing the bill with them would blame the whole bill on traffic outside otel_llm."""
    midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with pytest.raises(BillingError, match=r"12h.*retention"):
        recorded.fetch(short_lived.url, [midnight], midnight + timedelta(days=1))
