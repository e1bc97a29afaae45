"""otel_llm.process.start_time: what the exact-spend rules read to tell a restart from a gap (issue 17.1)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_llm import semconv as sc


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [p for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
            for m in sm.metrics if m.name == name for p in m.data.data_points]


def test_one_start_time_per_process_exported_once_across_instrumentations(
    instrument: Callable[..., Any], reader: InMemoryMetricReader
) -> None:
    instrumentor = instrument()
    instrumentor.uninstrument()
    instrument()
    found = points(reader, sc.PROCESS_START_TIME)
    assert len(found) == 1 and found[0].attributes == {}
    # The module's import time: before this test, not in the future.
    assert 0 < found[0].value <= time.time()


def test_prometheus_name_is_the_one_the_rules_read() -> None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import REGISTRY, generate_latest

    from otel_llm.process import register_start_time

    reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        register_start_time(provider.get_meter("test"))
        text = generate_latest(REGISTRY).decode()
    finally:
        provider.shutdown()  # unregisters the reader's collector
    line = next(line for line in text.splitlines() if line.startswith("otel_llm_process_start_time_seconds"))
    assert float(line.rsplit(" ", 1)[1]) <= time.time()


def test_a_forked_child_reports_its_own_start() -> None:
    code = (
        "import os, time\n"
        "from otel_llm import process\n"
        "parent = process._started\n"
        "time.sleep(0.05)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if process._started > parent else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    if not hasattr(os, "fork"):
        return
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0
