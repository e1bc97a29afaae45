"""The in-process pieces of the benchmark: OTel SDK set-up, contenders, workloads, floor, counting.

Everything here runs inside one worker process (see `bench.worker`); nothing here times a
comparison between contenders. The smoke test imports this module with the main venv.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench import mock_openai

__all__ = [
    "CONTENDERS",
    "WORKLOADS",
    "Contender",
    "Emission",
    "Skip",
    "Telemetry",
    "Worker",
    "content_capture_off",
]

# Every contender runs with message-content capture off: the comparison is of telemetry plumbing,
# not of how fast each one JSON-encodes prompts. Ours and the official one default to off (they share
# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, with different value sets, so it stays unset);
# OpenLLMetry and OpenInference default to on. Set before any instrumentation is imported.
_CONTENT_OFF = {
    "TRACELOOP_TRACE_CONTENT": "false",
    "OPENINFERENCE_HIDE_INPUTS": "true",
    "OPENINFERENCE_HIDE_OUTPUTS": "true",
}


def content_capture_off() -> None:
    for key, value in _CONTENT_OFF.items():
        os.environ.setdefault(key, value)


class Skip(Exception):
    """A contender that cannot run here; the message says why (shown in the report)."""


# --- telemetry --------------------------------------------------------------------------------
class CountingExporter(SpanExporter):
    """Drops spans after counting them: the SDK does all its work, nothing leaves the process."""

    def __init__(self) -> None:
        self.count = 0
        self.last: ReadableSpan | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        if spans:
            self.last = spans[-1]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_DELTA = {
    kind: AggregationTemporality.DELTA
    for kind in (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)
}


@dataclass
class Emission:
    """What a contender emitted for a number of calls, from the exporter and the metric reader."""

    calls: int
    spans: int
    histogram_records: int
    counter_points: int
    metric_names: list[str] = field(default_factory=list)
    span_attributes: int = 0

    @property
    def ok(self) -> bool:
        return self.spans > 0 and (self.histogram_records + self.counter_points) > 0

    def describe(self) -> str:
        if self.ok:
            return "ok"
        missing = [what for what, n in (("spans", self.spans),
                                         ("metrics", self.histogram_records + self.counter_points)) if n == 0]
        return "emitted nothing" if len(missing) == 2 else f"emitted no {missing[0]}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "spans": self.spans,
            "histogram_records": self.histogram_records,
            "counter_points": self.counter_points,
            "metric_names": self.metric_names,
            "span_attributes": self.span_attributes,
            "status": self.describe(),
        }


class Telemetry:
    """A real SDK pipeline: BatchSpanProcessor -> counting exporter; delta in-memory metric reader."""

    def __init__(self, process_wide: bool = True) -> None:
        self.exporter = CountingExporter()
        self.instrumentor: Any = None  # the contender's instrumentor, once instrumented
        self.instrument_kwargs: dict[str, Any] = {}  # what it was instrumented with (to switch it back on)
        self.processor = BatchSpanProcessor(self.exporter)
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(self.processor)
        self.reader = InMemoryMetricReader(preferred_temporality=_DELTA)
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        if process_wide:
            # Peers that ignore the providers they are given fall back to the globals: same pipeline.
            trace_api.set_tracer_provider(self.tracer_provider)
            metrics_api.set_meter_provider(self.meter_provider)

    def drain(self) -> None:
        """Flush spans and reset the delta metric storage (not timed)."""
        self.tracer_provider.force_flush()
        self.reader.get_metrics_data()

    def emission(self, calls: int, run: Callable[[], None]) -> Emission:
        self.drain()
        before = self.exporter.count
        run()
        self.tracer_provider.force_flush()
        spans = self.exporter.count - before
        histogram_records = counter_points = 0
        names: set[str] = set()
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            histogram_records += point.count
                        elif isinstance(point, NumberDataPoint):
                            counter_points += 1
                        names.add(metric.name)
        last = self.exporter.last
        return Emission(
            calls=calls,
            spans=spans,
            histogram_records=histogram_records,
            counter_points=counter_points,
            metric_names=sorted(names),
            span_attributes=len(last.attributes or {}) if (last is not None and spans) else 0,
        )

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


# --- the floor: only what otel_llm asks of the SDK per call, with none of our code ------------
# Duration and token buckets as the conventions advise (same as otel_llm.semconv).
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


class Floor:
    """Exactly what otel_llm asks of the OpenTelemetry SDK per call, with none of our code.

    One CLIENT span with the attributes otel_llm sets on the same call (26 on chat: 13 at start, 13
    at the end; 29 on a stream, 14 and 15; 15 on embeddings, 9 and 6), and the histogram records it makes, in the span's context as otel_llm records them
    (so the SDK samples exemplars): chat 3 (duration, input and output tokens), streams add
    time-to-first-chunk, embeddings record one token type. otel_llm's sums go through its own ledger,
    read by observable counters once per collection, so they are not SDK work per call; the
    `floor_ops_counters` workload times the same sums as six SDK `Counter.add` calls, to show what the ledger
    saves. Attribute dicts are built per call, as any instrumentation must.
    """

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        tracer = tracer_provider.get_tracer("otel_llm.floor")
        meter = meter_provider.get_meter("otel_llm.floor")
        self.tracer = tracer
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=_DURATION_BUCKETS
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS
        )
        self.ttfc = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.calls = meter.create_counter("otel_llm.calls", unit="{call}")
        self.cost = meter.create_counter("otel_llm.cost", unit="USD")
        self.tokens = meter.create_counter("otel_llm.tokens", unit="{token}")

    def record(self, operation: str, request_model: str, response: Any, seconds: float,
               ttfc: float | None = None, counters: bool = False) -> None:
        usage = response.usage
        response_model = response.model
        input_tokens = usage.prompt_tokens
        output_tokens = getattr(usage, "completion_tokens", None)
        chat = operation == "chat"
        start = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": request_model,
            "server.address": "api.openai.com",
            "server.port": 443,
            "user.id": "user-1234",
            "session.id": "session-5678",
            "otel_llm.team": "search",
            "otel_llm.api_key.fingerprint": "3f9a1c2b7d4e",
        }
        if chat:  # the request's parameters (embeddings requests carry none of these)
            start.update({"gen_ai.request.max_tokens": 512, "gen_ai.request.temperature": 0.2,
                          "gen_ai.request.top_p": 1.0, "gen_ai.request.seed": 7})
        if ttfc is not None:
            start["gen_ai.request.stream"] = True
        span = self.tracer.start_span(f"{operation} {request_model}", kind=trace_api.SpanKind.CLIENT,
                                      attributes=start)
        cost = 0.0012287
        if chat:
            span.set_attributes({
                "gen_ai.response.id": getattr(response, "id", "") or "",
                "gen_ai.response.model": response_model,
                "gen_ai.response.finish_reasons": ("stop",),
                "openai.response.service_tier": "default",
                "openai.response.system_fingerprint": "fp_06737a9306",
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens or 0,
                "gen_ai.usage.cache_read.input_tokens": 1024,
                "gen_ai.usage.reasoning.output_tokens": 64,
                "otel_llm.cache.hit": True,
                "otel_llm.cost.usd": cost,
                "otel_llm.price.source": "genai-prices:openai/o4-mini",
                "otel_llm.cache.savings_usd": 0.0008448,
            })
            if ttfc is not None:  # a stream's own: 29 attributes in all
                span.set_attributes({"gen_ai.response.time_to_first_chunk": ttfc, "otel_llm.stream.chunks": 50})
        else:  # what otel_llm reads from an embeddings response: 15 attributes in all, not chat's 26
            span.set_attributes({
                "gen_ai.response.model": response_model,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": 0,
                "otel_llm.cache.hit": False,
                "otel_llm.cost.usd": 1.6e-07,
                "otel_llm.price.source": "genai-prices:openai/text-embedding-3-small",
            })
        span.end()
        ctx = trace_api.set_span_in_context(span)
        hist_attrs = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": response_model,
            "server.address": "api.openai.com",
            "server.port": 443,
        }
        self.duration.record(seconds, hist_attrs, context=ctx)
        if ttfc is not None:
            self.ttfc.record(ttfc, hist_attrs, context=ctx)
        self.token_usage.record(input_tokens, {**hist_attrs, "gen_ai.token.type": "input"}, context=ctx)
        if output_tokens is not None:
            self.token_usage.record(output_tokens, {**hist_attrs, "gen_ai.token.type": "output"}, context=ctx)
        if not counters:
            return
        bounded = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": response_model,
            "server.address": "api.openai.com",
            "user.id": "user-1234",
            "otel_llm.team": "search",
            "otel_llm.api_key.fingerprint": "3f9a1c2b7d4e",
        }
        self.calls.add(1, bounded)
        self.cost.add(cost, {**bounded, "otel_llm.prompt.size": "medium"})
        self.tokens.add(input_tokens, {**bounded, "gen_ai.token.type": "input"})
        if output_tokens is not None:
            self.tokens.add(output_tokens, {**bounded, "gen_ai.token.type": "output"})
            self.tokens.add(1024, {**bounded, "gen_ai.token.type": "cache_read"})
            self.tokens.add(64, {**bounded, "gen_ai.token.type": "reasoning"})


# --- contenders -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    package: str  # what pip installs ("" for in-tree)
    emits_telemetry: bool = True


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("baseline", "baseline (no instrumentation)", "", emits_telemetry=False),
        Contender("floor", "floor (SDK calls only)", ""),
        Contender("otel_llm", "otel_llm", "otel-llm (editable)"),
        Contender("genai_openai", "official (genai-openai)", "opentelemetry-instrumentation-genai-openai"),
        Contender("openllmetry", "OpenLLMetry", "opentelemetry-instrumentation-openai"),
        Contender("openinference", "OpenInference", "openinference-instrumentation-openai"),
    )
}


def _import(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise Skip(f"{module} not importable ({exc})") from exc


def _instrument_otel_llm(tel: Telemetry, stack: contextlib.ExitStack) -> str:
    _import("otel_llm.instrumentor")
    otel_llm = _import("otel_llm")
    instrumentor = otel_llm.OpenAIInstrumentor()
    tel.instrument_kwargs = {"tracer_provider": tel.tracer_provider, "meter_provider": tel.meter_provider}
    instrumentor.instrument(**tel.instrument_kwargs)
    stack.callback(_uninstrument, instrumentor)
    tel.instrumentor = instrumentor
    # The same attribution the floor carries: set once for the process, as a web app would per request.
    attributes = getattr(otel_llm, "attributes", None)
    if attributes is not None:
        stack.enter_context(attributes(user_id="user-1234", session_id="session-5678", team="search"))
    return _version("otel-llm")


def _uninstrument(instrumentor: Any) -> None:
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def _instrument_peer(module: str, dist: str, **extra: Any) -> Callable[[Telemetry, contextlib.ExitStack], str]:
    def instrument(tel: Telemetry, stack: contextlib.ExitStack) -> str:
        instrumentor = _import(module).OpenAIInstrumentor()
        tel.instrument_kwargs = {"tracer_provider": tel.tracer_provider, "meter_provider": tel.meter_provider, **extra}
        instrumentor.instrument(**tel.instrument_kwargs)
        stack.callback(_uninstrument, instrumentor)
        tel.instrumentor = instrumentor
        return _version(dist)

    return instrument


def _openinference(tel: Telemetry, stack: contextlib.ExitStack) -> str:
    config = _import("openinference.instrumentation").TraceConfig(hide_inputs=True, hide_outputs=True)
    return _instrument_peer("openinference.instrumentation.openai", "openinference-instrumentation-openai",
                            config=config)(tel, stack)


_INSTRUMENT: dict[str, Callable[[Telemetry, contextlib.ExitStack], str]] = {
    "otel_llm": _instrument_otel_llm,
    "genai_openai": _instrument_peer("opentelemetry.instrumentation.genai.openai",
                                     "opentelemetry-instrumentation-genai-openai"),
    "openllmetry": _instrument_peer("opentelemetry.instrumentation.openai", "opentelemetry-instrumentation-openai"),
    "openinference": _openinference,
}


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


# OTEL_LLM_METRIC_USER_LIMIT's default (docs/CONTRACT.md).
USER_LIMIT = 1000

# --- workloads --------------------------------------------------------------------------------
_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant for an online bookshop."},
    {"role": "user", "content": "Summarise the return policy for damaged paperbacks in two sentences."},
]
_CHAT_KWARGS: dict[str, Any] = {
    "model": mock_openai.CHAT_MODEL,
    "messages": _MESSAGES,
    "max_completion_tokens": 512,
    "temperature": 0.2,
    "top_p": 1.0,
    "seed": 7,
}
_STREAM_KWARGS: dict[str, Any] = {**_CHAT_KWARGS, "stream": True, "stream_options": {"include_usage": True}}
_EMB_KWARGS: dict[str, Any] = {"model": mock_openai.EMBEDDING_MODEL, "input": "damaged paperback return policy"}


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    kind: str  # chat | stream | embeddings | floor
    is_async: bool = False
    chunks: int = 0  # content chunks per stream


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("chat", "chat, sync", "chat"),
        Workload("chat_async", "chat, async", "chat", is_async=True),
        Workload("stream", "stream 50 chunks, sync", "stream", chunks=50),
        Workload("stream_async", "stream 50 chunks, async", "stream", is_async=True, chunks=50),
        Workload("stream_200", "stream 200 chunks, sync", "stream", chunks=200),
        # A stream's fixed cost (open, first chunk, end), chunks excluded: one content chunk, then the
        # finish and usage chunks every stream ends with.
        Workload("stream_1", "stream 1 chunk, sync", "stream", chunks=1),
        Workload("stream_1_async", "stream 1 chunk, async", "stream", is_async=True, chunks=1),
        Workload("embeddings", "embeddings, sync", "embeddings"),
        Workload("embeddings_async", "embeddings, async", "embeddings", is_async=True),
        Workload("floor_ops", "floor ops alone (no openai call): span + histogram records", "floor"),
        # otel_llm keeps its sums in a ledger read by observable counters; the same sums as SDK
        # counters (six `Counter.add` per chat call), to show what the ledger saves.
        Workload("floor_ops_counters", "floor ops plus the sums as SDK counters", "floor"),
    )
}


class Worker:
    """One contender in one process: pipeline, instrumentation, clients, and timed workloads."""

    def __init__(self, contender: str, process_wide: bool = True) -> None:
        """`process_wide=False` (in-process tests): leave the global providers and environment alone."""
        if process_wide:
            content_capture_off()
        self.contender = contender
        self.tel = Telemetry(process_wide)
        self._stack = contextlib.ExitStack()
        self.version = ""
        if contender in _INSTRUMENT:
            self.version = _INSTRUMENT[contender](self.tel, self._stack)
        elif contender not in ("baseline", "floor"):
            raise Skip(f"unknown contender {contender!r}")
        self._floor = Floor(self.tel.tracer_provider, self.tel.meter_provider) if contender == "floor" else None
        self.floor = self._floor
        self.sync = {1: mock_openai.sync_client(1), 50: mock_openai.sync_client(50), 200: mock_openai.sync_client(200)}
        self.runner = asyncio.Runner()
        self.async_clients = self.runner.run(self._make_async_clients())
        self.async_client = self.async_clients[50]

    @staticmethod
    async def _make_async_clients() -> dict[int, Any]:
        return {1: mock_openai.async_client(1), 50: mock_openai.async_client(50)}

    # One call of each kind; the floor contender wraps the plain call with only the SDK work.
    def _chat(self) -> None:
        start = time.perf_counter()
        response = self.sync[50].chat.completions.create(**_CHAT_KWARGS)
        if self.floor is not None:
            self.floor.record("chat", _CHAT_KWARGS["model"], response, time.perf_counter() - start)

    def _stream(self, chunks: int) -> None:
        start = time.perf_counter()
        first = last = None
        for chunk in self.sync[chunks].chat.completions.create(**_STREAM_KWARGS):
            if first is None:
                first = time.perf_counter()
            last = chunk
        if self.floor is not None:
            assert first is not None
            self.floor.record("chat", _CHAT_KWARGS["model"], last, time.perf_counter() - start, first - start)

    def _embeddings(self) -> None:
        start = time.perf_counter()
        response = self.sync[50].embeddings.create(**_EMB_KWARGS)
        if self.floor is not None:
            self.floor.record("embeddings", _EMB_KWARGS["model"], response, time.perf_counter() - start)

    async def _achat(self) -> None:
        start = time.perf_counter()
        response = await self.async_client.chat.completions.create(**_CHAT_KWARGS)
        if self.floor is not None:
            self.floor.record("chat", _CHAT_KWARGS["model"], response, time.perf_counter() - start)

    async def _astream(self, chunks: int = 50) -> None:
        start = time.perf_counter()
        first = last = None
        async for chunk in await self.async_clients[chunks].chat.completions.create(**_STREAM_KWARGS):
            if first is None:
                first = time.perf_counter()
            last = chunk
        if self.floor is not None:
            assert first is not None
            self.floor.record("chat", _CHAT_KWARGS["model"], last, time.perf_counter() - start, first - start)

    async def _aembeddings(self) -> None:
        start = time.perf_counter()
        response = await self.async_client.embeddings.create(**_EMB_KWARGS)
        if self.floor is not None:
            self.floor.record("embeddings", _EMB_KWARGS["model"], response, time.perf_counter() - start)

    def supports(self, workload: str) -> bool:
        return WORKLOADS[workload].kind != "floor" or self.floor is not None

    def _sync_call(self, workload: Workload) -> Callable[[], None]:
        if workload.kind == "chat":
            return self._chat
        if workload.kind == "stream":
            return lambda: self._stream(workload.chunks)
        if workload.kind == "embeddings":
            return self._embeddings
        floor, response, counters = self.floor, _FloorResponse(), workload.name == "floor_ops_counters"
        assert floor is not None
        return lambda: floor.record("chat", "o4-mini", response, 0.41, counters=counters)

    def _async_call(self, workload: Workload) -> Callable[[], Any]:
        if workload.kind == "stream":
            return lambda: self._astream(workload.chunks)
        return {"chat": self._achat, "embeddings": self._aembeddings}[workload.kind]

    def run(self, workload_name: str, n: int) -> dict[str, float]:
        """n calls; CPU time of the whole process (the span processor's thread included) and wall."""
        workload = WORKLOADS[workload_name]
        if workload.is_async:
            return self.runner.run(self._run_async(self._async_call(workload), n))
        call = self._sync_call(workload)
        p0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        for _ in range(n):
            call()
        p1, t1, w1 = time.process_time(), time.thread_time(), time.perf_counter()
        return {"process": p1 - p0, "thread": t1 - t0, "wall": w1 - w0, "n": n}

    @staticmethod
    async def _run_async(call: Callable[[], Any], n: int) -> dict[str, float]:
        p0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        for _ in range(n):
            await call()
        p1, t1, w1 = time.process_time(), time.thread_time(), time.perf_counter()
        return {"process": p1 - p0, "thread": t1 - t0, "wall": w1 - w0, "n": n}

    def emission(self, workload_name: str, calls: int = 20) -> Emission:
        return self.tel.emission(calls, lambda: self.run(workload_name, calls) and None)

    # --- the self-paired comparison: the contender switched on and off in its own process ------
    def switch(self, on: bool) -> None:
        """Turn this contender's work on or off (untimed). The floor drops its SDK calls; an
        instrumentation is uninstrumented and instrumented again with the same arguments."""
        if self.contender == "floor":
            self.floor = self._floor if on else None
            return
        ins = self.tel.instrumentor
        if ins is None:  # the baseline: nothing to switch
            return
        if on and not ins.is_instrumented_by_opentelemetry:
            ins.instrument(**self.tel.instrument_kwargs)
        elif not on and ins.is_instrumented_by_opentelemetry:
            ins.uninstrument()

    def run_pairs(self, sizes: Mapping[str, int], on_first: bool) -> dict[str, dict[str, float]]:
        """Every workload in `sizes` with the contender on, then off (or off, then on), in this
        process: µs of process CPU per call for each state. Left switched on."""
        out: dict[str, dict[str, float]] = {name: {} for name in sizes}
        try:
            for on in (on_first, not on_first):
                self.switch(on)
                for name, n in sizes.items():
                    r = self.run(name, n)
                    out[name]["on" if on else "off"] = r["process"] / r["n"] * 1e6
        finally:
            self.switch(True)
        return out

    def emission_off(self, workload_name: str, calls: int = 5) -> Emission:
        """What the contender emits while switched off: must be nothing for its pairs to count."""
        self.switch(False)
        try:
            return self.emission(workload_name, calls)
        finally:
            self.switch(True)

    def settle(self) -> None:
        """After warm-up: collect and freeze what exists, so later GC passes cost the same everywhere."""
        self.tel.drain()
        gc.collect()
        gc.freeze()

    def memory(self, checkpoints: Sequence[int], warmup: int = USER_LIMIT + 100) -> list[dict[str, Any]]:
        """Allocated blocks / RSS after `checkpoints` calls of a chat-heavy mix (1 in 50 a stream,
        1 in 50 embeddings), each with a distinct user id when otel_llm can attribute one.

        `warmup` distinct users go first, uncounted: up to the user-label limit every new user is a
        new metric series (bounded by design); past it they all share `_other`, and from there on
        memory must stay flat.
        """
        attributes = _attributes_cm() if self.contender == "otel_llm" else None
        kinds = {0: self._stream_50, 1: self._embeddings}
        out: list[dict[str, Any]] = []
        done = 0

        def calls(until: int) -> None:
            nonlocal done
            while done < until:
                call = kinds.get(done % 50, self._chat)
                if attributes is not None:
                    with attributes(user_id=f"user-{done}"):
                        call()
                else:
                    call()
                done += 1

        def reading(label: str, count: int) -> None:
            self.tel.drain()
            gc.collect()
            out.append({"label": label, "calls": count, "blocks": sys.getallocatedblocks(), "rss_bytes": _rss(),
                        "malloc_bytes": _malloc_in_use(), "gc_objects": len(gc.get_objects())})

        reading("before warm-up", 0)
        calls(warmup)
        reading(f"after warm-up ({warmup:,} distinct users)" if attributes else f"after warm-up ({warmup:,})", 0)
        start = done
        for target in sorted(checkpoints):
            calls(start + target)
            reading(f"after {target:,} calls", target)
        return out

    def _stream_50(self) -> None:
        self._stream(50)

    def close(self) -> None:
        self._stack.close()
        self.runner.close()
        self.tel.shutdown()


class _FloorResponse:
    """Stands in for a ChatCompletion when timing the floor ops alone."""

    id = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    model = mock_openai.RESPONSE_MODEL

    class usage:  # shaped like the SDK's attribute
        prompt_tokens = 1117
        completion_tokens = 142


def _attributes_cm() -> Any:
    otel_llm = sys.modules.get("otel_llm")
    return getattr(otel_llm, "attributes", None)


def _malloc_in_use() -> int:
    """glibc's bytes in use (mallinfo2().uordblks): also sees what pymalloc's block count does not
    (objects over 512 bytes, C extensions). -1 where there is no glibc."""
    try:
        import ctypes

        class _MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                "keepcost")]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        return int(info.uordblks + info.hblkhd)
    except (OSError, AttributeError):
        return -1


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def worker(contender: str) -> Iterator[Worker]:
    w = Worker(contender)
    try:
        yield w
    finally:
        w.close()
