"""Exporter down or slow (issue 7): with the OTLP endpoint refusing connections or hanging, the app's
calls take no longer than with a healthy exporter, and memory stays bounded.

The real OpenTelemetry SDK as an app deploys it: BatchSpanProcessor + OTLPSpanExporter (HTTP) and
PeriodicExportingMetricReader + OTLPMetricExporter, every timeout, queue and batch size at its SDK
default (10 s per OTLP request with retries inside it, a 2,048-span queue, 512-span batches). One
setting is not the default: the metric export interval is 0.5 s instead of 60 s, because at the
default the reader would not export once while we measure, which would hide the metric exporter's
failure instead of exercising it. The endpoint is either a loopback port bound with no listener
(connection refused: the exporter retries with 1, 2, 4 s back-offs) or a loopback server that
accepts connections and never answers (every export waits out its full 10 s timeout).

Timing: the four configurations (uninstrumented, healthy in-memory exporters, refused, hanging) run
in interleaved batches of calls through the real openai SDK and its mock transport, so drift (CPU
frequency, other load) hits all of them alike; each batch gives a median per-call time, and the
exporter-down cases are compared to the in-memory case round by round (the median of the paired
ratios). The uninstrumented time is reported, not asserted: instrumentation has a cost of its own
(BENCHMARKS.md); the question here is whether a dead endpoint adds to it. A regression that puts
export on the app's thread costs seconds per call, not percent.

Memory: tracemalloc, from a span queue already full, over 5,000 more calls (`slow`: tracemalloc
makes each SDK call about five times slower).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import statistics
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm import OpenAIInstrumentor
from tests.conftest import Api, FakeAPI

MESSAGES = [{"role": "user", "content": "hi"}]
BATCH = 100  # calls per timed batch
ROUNDS = 20  # 2,000 timed calls per configuration
QUEUE = 2048  # BatchSpanProcessor's default max_queue_size
EXPORT_BATCH = 512  # and its default max_export_batch_size
METRIC_INTERVAL_MS = 500
# The paired ratio measures 1.02-1.03 here, run after run: the SDK logs "Queue full, dropping span"
# on the app's thread for every span a full queue drops (~25 us formatted and written; 1.00-1.01
# with that logger silenced). 1.15 leaves room for a noisy CI machine; an export on the app's
# path would cost seconds per call (10 s hanging, 7 s of retries refused), not percent.
SLOWER_AT_MOST = 1.15
TRACED_CALLS = 5000  # traced from a full queue: about twice its size
SLACK = 1 << 20  # bytes: the export's serialized request, interpreter caches, tracemalloc noise


# --- the two broken endpoints ---------------------------------------------------------------------
class RefusingPort:
    """A loopback port that is bound but never listens: connecting gets ECONNREFUSED, and no other
    process can take the port while the test runs."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._sock.close()


class HangingCollector:
    """Accepts every connection, never reads a byte, never answers; close() drops them all."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._server.close()
        for conn in self.accepted:
            conn.close()  # a hung export fails now instead of at its timeout: teardown stays fast


# --- exporters that count what happened ------------------------------------------------------------
class CountingSpanExporter(OTLPSpanExporter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.results: Counter[str] = Counter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.results["started"] += 1
        result = super().export(spans)
        self.results[result.name] += 1
        return result


class CountingMetricExporter(OTLPMetricExporter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.results: Counter[str] = Counter()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.results["started"] += 1
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.results[result.name] += 1
        return result


class InMemoryMetricExporter(MetricExporter):
    """A healthy exporter that answers at once and keeps only the last export."""

    def __init__(self) -> None:
        super().__init__()
        self.last: MetricsData | None = None

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.last = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class DiscardingSpanExporter(InMemorySpanExporter):
    """A healthy span exporter that keeps nothing (the timing loop must not grow a list)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


# --- one deployed pipeline --------------------------------------------------------------------------
@dataclass
class Pipeline:
    name: str
    span_exporter: SpanExporter
    metric_exporter: MetricExporter
    endpoint: RefusingPort | HangingCollector | None = None
    tracer_provider: TracerProvider = field(init=False)
    meter_provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.span_exporter))  # SDK defaults
        reader = PeriodicExportingMetricReader(self.metric_exporter, export_interval_millis=METRIC_INTERVAL_MS)
        self.meter_provider = MeterProvider(metric_readers=[reader])

    def fill_queue(self) -> None:
        """Put the span queue in its steady state for a dead endpoint: full, dropping."""
        tracer = self.tracer_provider.get_tracer("fill")
        for _ in range(QUEUE + 2 * EXPORT_BATCH):
            tracer.start_span("fill").end()

    def shutdown(self) -> None:
        # Exporters first: that aborts their retry back-off, and makes the processor's final flush of
        # a full queue fail at once instead of retrying every batch for 10 s.
        self.span_exporter.shutdown()
        self.metric_exporter.shutdown()
        if self.endpoint is not None:
            self.endpoint.close()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _otlp(name: str, endpoint: RefusingPort | HangingCollector) -> Pipeline:
    return Pipeline(name, CountingSpanExporter(endpoint=f"{endpoint.url}/v1/traces"),
                    CountingMetricExporter(endpoint=f"{endpoint.url}/v1/metrics"), endpoint)


class _AsStderrWould(logging.Filter):
    """Formats and writes each record to a stream that keeps nothing, as an app's stderr handler
    would, then stops it: pytest's log capture would otherwise keep every one of the SDK's lines (a
    warning per dropped span) and they would show up as memory growth that no app has."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        self.handler.handle(record)
        return False


@pytest.fixture(scope="module")
def otel_defaults() -> Iterator[None]:
    """SDK defaults whatever the environment says, and the SDK's own log lines written, not kept."""
    saved = {k: os.environ.pop(k) for k in list(os.environ)
             if k.startswith(("OTEL_EXPORTER_OTLP", "OTEL_BSP_", "OTEL_METRIC_EXPORT_"))}
    logging.getLogger("opentelemetry.sdk._shared_internal")  # the BatchSpanProcessor's, before it logs
    loggers = [logger for name, logger in logging.root.manager.loggerDict.items()
               if name.startswith("opentelemetry") and isinstance(logger, logging.Logger)]
    with open(os.devnull, "w") as devnull:
        sink = _AsStderrWould(logging.StreamHandler(devnull))
        for logger in loggers:  # a logger's filters see only its own records: every one gets it
            logger.addFilter(sink)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(sink)
            os.environ.update(saved)


@pytest.fixture(scope="module")
def pipelines(otel_defaults: None) -> Iterator[dict[str, Pipeline]]:
    built = {
        "in_memory": Pipeline("in_memory", DiscardingSpanExporter(), InMemoryMetricExporter()),
        "refused": _otlp("refused", RefusingPort()),
        "hanging": _otlp("hanging", HangingCollector()),
    }
    for name in ("refused", "hanging"):
        built[name].fill_queue()
    try:
        yield built
    finally:
        for pipeline in built.values():
            pipeline.shutdown()


@pytest.fixture(scope="module")
def app() -> Iterator[Api]:
    api = Api("sync", FakeAPI(), "https://api.openai.com/v1")
    yield api
    api.close()


def _calls(api: Api, n: int) -> list[int]:
    """n chat calls as an app makes them; the wall time of each, in ns."""
    times = []
    create = api.client.chat.completions.create
    for _ in range(n):
        start = time.perf_counter_ns()
        create(model="gpt-4.1", messages=MESSAGES)
        times.append(time.perf_counter_ns() - start)
    api.fake.requests.clear()  # the fake API's own log of requests is not the app's memory
    api.fake.bodies.clear()
    return times


def _instrumented(pipeline: Pipeline | None) -> Callable[[], None]:
    """Instrument with `pipeline`'s providers (None: leave the SDK bare); returns the undo."""
    if pipeline is None:
        return lambda: None
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=pipeline.tracer_provider, meter_provider=pipeline.meter_provider)
    return instrumentor.uninstrument


def test_calls_are_not_slower_when_the_exporter_refuses_or_hangs(pipelines: dict[str, Pipeline], app: Api) -> None:
    configs: dict[str, Pipeline | None] = {"uninstrumented": None, **pipelines}
    names = list(configs)
    medians: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(ROUNDS + 1):  # round 0 warms up and is not counted
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # rotate the order
            undo = _instrumented(configs[name])
            try:
                times = _calls(app, BATCH)
            finally:
                undo()
            if round_:
                medians[name].append(statistics.median(times) / 1000)

    summary = {name: round(statistics.median(values), 1) for name, values in medians.items()}
    ratios = {name: statistics.median(down / healthy for down, healthy in zip(medians[name], medians["in_memory"], strict=True))
              for name in ("refused", "hanging")}
    report = (f"per-call median in us over {ROUNDS} interleaved batches of {BATCH}: {summary}; "
              f"paired ratio to the in-memory case: {ratios}")
    assert all(ratio <= SLOWER_AT_MOST for ratio in ratios.values()), report
    print(f"\n{report}")

    # The exporters really were down throughout: nothing was ever exported.
    for name in ("refused", "hanging"):
        for exporter in (pipelines[name].span_exporter, pipelines[name].metric_exporter):
            results = exporter.results  # type: ignore[attr-defined]
            assert results["started"] >= 1 and results["SUCCESS"] == 0, (name, results)
    assert len(pipelines["hanging"].endpoint.accepted) >= 2  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def bytes_per_span(app: Api) -> float:
    """What one call's span costs when kept: traced with a processor that keeps every span queued."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=10**6,
                                                   schedule_delay_millis=10**7, max_export_batch_size=10**6))
    meter_provider = MeterProvider()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=meter_provider)
    try:
        _calls(app, 100)
        gc.collect()
        tracemalloc.start()
        _calls(app, 500)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        meter_provider.shutdown()
    return grown / 500


@pytest.mark.slow  # ~30 s per case
@pytest.mark.parametrize("name", ["refused", "hanging"])
def test_memory_stays_bounded_when_the_exporter_is_down(pipelines: dict[str, Pipeline], app: Api, name: str,
                                                        bytes_per_span: float) -> None:
    """Traced from a full queue: each span that enters pushes an older, untraced one out, so the traced
    memory climbs to the queue's worth of spans (plus the batch held by the export in progress) within
    2,560 calls and then stays flat. An unbounded buffer would keep climbing by one span per call."""
    undo = _instrumented(pipelines[name])
    try:
        _calls(app, 500)  # the queue full of spans from real calls
        gc.collect()
        tracemalloc.start()
        levels = []
        for _ in range(TRACED_CALLS // 1000):
            _calls(app, 1000)
            gc.collect()
            levels.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
    finally:
        undo()
    mib = [round(level / 2**20, 2) for level in levels]
    report = (f"{name}: traced MiB after each 1,000 calls {mib}; a kept span is {bytes_per_span / 1024:.1f} KiB, "
              f"so an unbounded buffer would hold {TRACED_CALLS * bytes_per_span / 2**20:.1f} MiB")
    # The queue, the batch held by the export in progress, and its serialized request.
    bound = (QUEUE + 2 * EXPORT_BATCH) * bytes_per_span + SLACK
    assert max(levels) < bound, f"{report}; bound {bound / 2**20:.2f} MiB"
    # Flat once the queue has turned over (after 3,000 calls): the last 2,000 calls add at most the
    # swap of the batch under export, against 2,000 spans' worth for an unbounded buffer.
    assert levels[-1] - levels[2] < EXPORT_BATCH * bytes_per_span + SLACK, report
    print(f"\n{report}")
