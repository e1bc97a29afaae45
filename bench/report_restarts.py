"""`otel-llm report` over a month in which one container crash-loops under its pod's id, on a real Prometheus.

One process (`job="worker"`, `instance="pod-c"`) runs RUN_MINUTES, dies and restarts at once, from the
day before the report's month to the end of the day reported, exporting its cost counter and its start
time once a minute. The samples are written with `promtool tsdb create-blocks-from openmetrics` into a
Prometheus that keeps 45 days (compose.yaml's setting); then the report of yesterday (the default) runs
against it in this process, and its day and month to date are compared with the spend written, to the
cent. What it shows: the runs of a restarted process are read in batches (`queries.exact_growth`), so
the report's time and its number of queries grow with the restarts by a small factor, not one query
per run and figure.

    .venv/bin/python -m bench.report_restarts [--run-minutes 30] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.scale_report import machine
from otel_llm.cli import queries, report
from otel_llm.cli.procs import Child, find_binary, free_port, http_ok, wait_until

__all__ = ["main", "measure"]

COST = "otel_llm_cost_USD_total"


def _openmetrics(start: float, end: float, month: float, day: float, run_minutes: int) -> tuple[str, dict[str, float]]:
    """The samples, and what was spent in the month to date and in the day (every run there is whole)."""
    costs, starts = [f"# TYPE {COST.removesuffix('_total')} counter"], [f"# TYPE {queries.PROCESS_START} gauge"]
    spent = {"runs": 0.0, "restarts_in_month": 0.0, "month_to_date": 0.0, "day": 0.0}
    t, run = start, 0
    while t + 60 * run_minutes <= end:
        value = 0.0
        for minute in range(run_minutes):
            value += 0.001 * (run % 7 + 1)
            at = t + 60 * minute
            costs.append(f'{COST}{{gen_ai_request_model="m",instance="pod-c",job="worker"}} {value:.6f} {at:.3f}')
            starts.append(f'{queries.PROCESS_START}{{instance="pod-c",job="worker"}} {t:.3f} {at:.3f}')
        spent["runs"] += 1
        spent["restarts_in_month"] += t >= month  # each run begun in the month restarted the one before
        spent["month_to_date"] += value if t >= month else 0.0
        spent["day"] += value if t >= day else 0.0
        t += 60 * run_minutes
        run += 1
    return "\n".join([*costs, *starts, "# EOF"]) + "\n", spent


def measure(run_minutes: int = 30, now: datetime | None = None) -> dict[str, Any]:
    promtool, prometheus = find_binary("promtool"), find_binary("prometheus")
    if promtool is None or prometheus is None:
        raise SystemExit("prometheus and promtool are needed: run scripts/install-tools (make tools)")
    now = now or datetime.now(timezone.utc)
    day_end = now.replace(hour=0, minute=0, second=0, microsecond=0)  # the report's default: yesterday, UTC
    day_start = day_end - timedelta(days=1)
    month_start = day_start.replace(day=1)
    # 10 s past each whole minute: no restart falls on a period's edge.
    text, spent = _openmetrics((month_start - timedelta(days=1)).timestamp() + 10, day_end.timestamp(),
                               month_start.timestamp(), day_start.timestamp(), run_minutes)
    workdir = Path(tempfile.mkdtemp(prefix="otel-llm-bench-report-"))
    try:
        source, data = workdir / "samples.om", workdir / "tsdb"
        source.write_text(text, encoding="utf-8")
        data.mkdir()
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                       check=True, capture_output=True, timeout=600)
        port = free_port()
        (workdir / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")
        child = Child("prometheus", [prometheus, f"--config.file={workdir / 'prometheus.yml'}",
                                     f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
                                     "--storage.tsdb.retention.time=45d", "--log.level=warn"], workdir / "log")
        url = f"http://127.0.0.1:{port}"
        try:
            client = queries.Prometheus(url)
            if not wait_until(lambda: http_ok(f"{url}/-/ready") and bool(client.query(f"count(last_over_time({COST}[40d]))")), 60):
                raise SystemExit(f"Prometheus did not load the blocks:\n{child.log_tail()}")
            sent: list[int] = []
            instant = queries.Prometheus._instant

            def counted(self: queries.Prometheus, promql: str, at: datetime | None) -> Any:
                sent.append(len(promql))
                return instant(self, promql, at)

            out = io.StringIO()
            queries.Prometheus._instant = counted  # type: ignore[method-assign]
            try:
                started = time.perf_counter()
                with contextlib.redirect_stdout(out):
                    code = report.main(["--prometheus", url, "--format", "json"])
                seconds = time.perf_counter() - started
            finally:
                queries.Prometheus._instant = instant  # type: ignore[method-assign]
            if code != 0:
                raise SystemExit(f"otel-llm report exited {code}")
            got = json.loads(out.getvalue())
        finally:
            child.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "when": now.strftime("%Y-%m-%d %H:%M UTC"), "run_minutes": run_minutes, "runs_written": int(spent["runs"]),
        "restarts_in_month_to_date": int(spent["restarts_in_month"]), "seconds": round(seconds, 2), "queries": len(sent),
        "longest_query_chars": max(sent),
        "day": {"written_usd": round(spent["day"], 6), "report_usd": got["day"]["spend_usd"]},
        "month_to_date": {"written_usd": round(spent["month_to_date"], 6), "report_usd": got["month_to_date"]["spend_usd"]},
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report_restarts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-minutes", type=int, default=30, help="how long each run lives (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = measure(args.run_minutes)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
