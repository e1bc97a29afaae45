"""One metric collection with otel_llm's sums at their bound: how long the SDK takes to read them.

Fills a ledger through the real recording path (Telemetry.start + Call.complete, no HTTP) with far
more distinct model names and user ids than the caps admit, then times `get_metrics_data()` on the
real OpenTelemetry SDK. Run: `.venv/bin/python bench/collection.py [calls] [rounds]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import openai
from openai.types.chat import ChatCompletion
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_llm import OpenAIInstrumentor


def main(calls: int = 20_000, rounds: int = 20) -> None:
    from conftest import fixture_json

    reader = InMemoryMetricReader()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader]))
    telemetry = instrumentor.telemetry
    assert telemetry is not None
    client = openai.OpenAI(api_key="sk-bench", base_url="https://gateway.example.com/v1")
    response = ChatCompletion.model_validate(fixture_json("chat_completion.json"))
    for i in range(calls):
        call = telemetry.start("chat", client, {"model": f"model-{i}", "user": f"user-{i}"}, False)
        call.complete(response)
    data = reader.get_metrics_data()
    observations = sum(
        len(metric.data.data_points)
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for metric in sm.metrics
    )
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        reader.get_metrics_data()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{calls} calls, {observations} data points per collection: "
          f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {rounds} collections")
    instrumentor.uninstrument()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
