"""Target 5: one metric collection with otel_llm's sums at their bound, and what it does to calls meanwhile.

Fills a ledger through the real recording path (Telemetry.start + Call.complete, no HTTP) with far
more distinct model names and user ids than the caps admit, so every sum sits at the series bound
(OTEL_LLM_METRIC_SERIES_LIMIT, 2000 by default). Then:

1. times `get_metrics_data()` on the real OpenTelemetry SDK, and our observable callbacks alone;
2. times every call of a thread making calls on existing series, in windows that alternate (paired,
   order rotated per round) between: alone; with a thread spinning pure Python (any busy thread in
   the process, the GIL's share); with a thread collecting back to back. A collection blocks calls
   beyond the GIL's share only if "collecting" is worse than "busy". Our observable callbacks never take
   the ledger lock, so a call waits on a collection for at most the interpreter's switch interval.

Run: `.venv/bin/python -m bench.collection [--calls N] [--rounds R] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from bench.scale_report import machine
from otel_llm import OpenAIInstrumentor

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "chat_completion.json"
CONDITIONS = ("alone", "busy", "collecting")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _iqr(values: list[float]) -> float:
    return _quantile(values, 0.75) - _quantile(values, 0.25)


class Bench:
    """One instrumented process at the series bound."""

    def __init__(self, calls: int) -> None:
        self.reader = InMemoryMetricReader()
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[self.reader])
        )
        telemetry = self.instrumentor.telemetry
        assert telemetry is not None
        self.telemetry = telemetry
        self.client = openai.OpenAI(api_key="sk-bench", base_url="https://gateway.example.com/v1")
        self.response = ChatCompletion.model_validate(json.loads(FIXTURE.read_text()))
        for i in range(calls):
            self.call(f"model-{i}", f"user-{i}")
        data = self.reader.get_metrics_data()
        self.points = sum(
            len(metric.data.data_points)
            for rm in (data.resource_metrics if data else ())
            for sm in rm.scope_metrics
            for metric in sm.metrics
        )
        ledger = telemetry.ledger
        self.ours = sum(len(list(s.observe(None))) for s in ledger._sums.values())  # type: ignore[arg-type]

    def call(self, model: str, user: str) -> None:
        call = self.telemetry.start("chat", self.client, {"model": model, "user": user}, False)
        call.complete(self.response)

    def collection_times(self, rounds: int) -> dict[str, list[float]]:
        """ms per full SDK collection (wall, and this thread's CPU), and per pass over our observable callbacks alone, interleaved."""
        sums = list(self.telemetry.ledger._sums.values())
        full: list[float] = []
        cpu: list[float] = []
        ours: list[float] = []
        for _ in range(rounds):
            started, cpu_started = time.perf_counter(), time.thread_time()
            self.reader.get_metrics_data()
            full.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
            started = time.perf_counter()
            for total in sums:
                total.observe(None)  # type: ignore[arg-type]
            ours.append((time.perf_counter() - started) * 1000)
        return {"full": full, "full_cpu": cpu, "ours": ours}

    def window(self, condition: str, seconds: float) -> tuple[list[float], int]:
        """µs of each call made in `seconds` (on existing series) under `condition`, and how many
        collections the background thread finished meanwhile."""
        stop = threading.Event()
        done = [0]

        def busy() -> None:
            x = 0
            while not stop.is_set():
                for i in range(1000):
                    x += i

        def collecting() -> None:
            while not stop.is_set():
                self.reader.get_metrics_data()
                done[0] += 1

        background: Callable[[], None] | None = {"busy": busy, "collecting": collecting}.get(condition)
        thread = threading.Thread(target=background) if background else None
        if thread:
            thread.start()
        latencies: list[float] = []
        perf = time.perf_counter
        end = perf() + seconds
        i = 0
        while perf() < end:
            i += 1
            started = perf()
            self.call(f"model-{i % 50}", f"user-{i % 50}")
            latencies.append((perf() - started) * 1e6)
        stop.set()
        if thread:
            thread.join()
        return latencies, done[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--window", type=float, default=1.0, help="seconds per latency window")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import logging

    logging.getLogger("otel_llm").setLevel(logging.ERROR)  # the overflow warnings are expected here
    bench = Bench(args.calls)
    times = bench.collection_times(args.rounds)
    result: dict[str, Any] = {
        "calls": args.calls,
        "series_limit": bench.telemetry.ledger.series_limit,
        "data_points": bench.points,
        "our_data_points": bench.ours,
        "switch_interval_ms": sys.getswitchinterval() * 1000,
        "machine": machine(),
    }
    for name, values in times.items():
        result[f"collection_{name}_ms"] = {
            "median": statistics.median(values), "iqr": _iqr(values), "max": max(values), "n": len(values)
        }
    print(f"{args.calls} calls -> {bench.points} data points per collection ({bench.ours} of them our sums)")
    for name, label in (("full", "get_metrics_data(), wall"), ("full_cpu", "get_metrics_data(), thread CPU"),
                        ("ours", "our observable callbacks alone, wall")):
        r = result[f"collection_{name}_ms"]
        print(f"  {label}: median {r['median']:.1f} ms, IQR {r['iqr']:.1f}, max {r['max']:.1f} over {r['n']}")

    # Paired latency windows, order rotated each round.
    per: dict[str, dict[str, list[float]]] = {c: {"p50": [], "p99": [], "max": [], "calls": []} for c in CONDITIONS}
    collections = 0
    for r in range(args.rounds // 2 or 1):
        order = CONDITIONS[r % 3:] + CONDITIONS[:r % 3]
        for condition in order:
            latencies, done = bench.window(condition, args.window)
            collections += done
            per[condition]["p50"].append(_quantile(latencies, 0.5))
            per[condition]["p99"].append(_quantile(latencies, 0.99))
            per[condition]["max"].append(max(latencies))
            per[condition]["calls"].append(len(latencies))
    result["latency_us"] = {
        c: {k: {"median": statistics.median(v), "iqr": _iqr(v), "max": max(v)} for k, v in per[c].items()}
        for c in CONDITIONS
    }
    result["collections_during_windows"] = collections
    print(f"  call latency (µs, median over {len(per['alone']['p50'])} windows of {args.window:g} s; "
          f"worst window's max; switch interval {result['switch_interval_ms']:.0f} ms):")
    for c in CONDITIONS:
        s = result["latency_us"][c]
        print(f"    {c:<10} p50 {s['p50']['median']:8.1f}  p99 {s['p99']['median']:8.1f}  "
              f"max {s['max']['median']:8.1f} (worst {s['max']['max']:8.1f})  calls/window {s['calls']['median']:.0f}")
    print(f"  {collections} collections ran during the 'collecting' windows")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    bench.instrumentor.uninstrument()


if __name__ == "__main__":
    main()
