"""The acceptance tests in every conventions mode: what they read is the v1.41.0 shape.

`make test-modes` runs the core suite again with `--semconv-mode latest` and `--semconv-mode both`
(conftest passes the mode to `instrument()`). The instrumentation then exports the names of the pinned
GenAI conventions (or both shapes). The exporter and reader here turn what was exported back into the
v1.41.0 shape the tests assert on, so the same assertions hold the latest output to the same figures,
and on the way they check what only the latest shape carries:
- the draft cost attributes equal our `otel_llm.cost.usd`, in USD, with the right source;
- the audio token counts fit inside the call's input and output tokens;
- the usage counters (split by modality) add up to the per-operation token histograms;
- in `both`, the latest shape agrees with the v1.41.0 shape point by point, and `cache_write` with
  `cache_creation`.
A check that fails raises AssertionError from `get_finished_spans()` / `get_metrics_data()`, so the
test that read them fails.

The names are written out here from the conventions' own documents (v1.41.0, and
open-telemetry/semantic-conventions-genai at the pin in tests/data/semconv-genai), not imported from
otel_llm, so this checks otel_llm/conventions.py instead of repeating it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from opentelemetry.sdk.metrics.export import (
    Histogram,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

MODES: Final = ("v1_41", "latest", "both")

# v1.41.0 -------------------------------------------------------------------------------------------
OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
TOKEN_USAGE: Final = "gen_ai.client.token.usage"
TOKEN_TYPE: Final = "gen_ai.token.type"
CACHE_CREATION: Final = "gen_ai.usage.cache_creation.input_tokens"
DESCRIPTIONS: Final = {
    OPERATION_DURATION: "GenAI operation duration",
    TIME_TO_FIRST_CHUNK: "Time to receive the first chunk of a streamed response",
    TOKEN_USAGE: "Number of input and output tokens used",
}

# the pinned latest ---------------------------------------------------------------------------------
# latest histogram -> (its v1.41.0 name, the attributes v1.41.0 adds)
HISTOGRAMS: Final[dict[str, tuple[str, tuple[tuple[str, str], ...]]]] = {
    "gen_ai.client.inference.duration": (OPERATION_DURATION, ()),
    "gen_ai.client.inference.time_to_first_chunk": (TIME_TO_FIRST_CHUNK, ()),
    "gen_ai.client.inference.operation.input_tokens": (TOKEN_USAGE, ((TOKEN_TYPE, "input"),)),
    "gen_ai.client.inference.operation.output_tokens": (TOKEN_USAGE, ((TOKEN_TYPE, "output"),)),
}
# usage counter -> the per-operation histogram its modalities add up to (None: nothing to add up to)
COUNTERS: Final[dict[str, str | None]] = {
    "gen_ai.client.inference.usage.input_tokens": "gen_ai.client.inference.operation.input_tokens",
    "gen_ai.client.inference.usage.output_tokens": "gen_ai.client.inference.operation.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens": None,
    "gen_ai.client.inference.usage.cache_write.input_tokens": None,
    "gen_ai.client.inference.usage.reasoning.output_tokens": None,
}
# the operations the pinned conventions call inference (the rest stay on operation.duration)
INFERENCE: Final = frozenset({"chat", "text_completion", "generate_content"})
MODALITY: Final = "gen_ai.token.modality"
MODALITIES: Final = frozenset({"text", "image", "video", "audio", "unknown"})
CACHE_WRITE: Final = "gen_ai.usage.cache_write.input_tokens"
AUDIO_INPUT: Final = "gen_ai.usage.audio.input_tokens"
AUDIO_OUTPUT: Final = "gen_ai.usage.audio.output_tokens"
# the draft (PR #443)
COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
COST_SOURCE: Final = "gen_ai.usage.cost.source"

# ours, the same in every mode
OUR_COST: Final = "otel_llm.cost.usd"
OUR_PRICE_SOURCE: Final = "otel_llm.price.source"

Attrs = tuple[tuple[str, Any], ...]


def _key(attributes: Mapping[str, Any] | None, *, without: str = "") -> Attrs:
    return tuple(sorted((k, v) for k, v in (attributes or {}).items() if k != without))


# --- spans -------------------------------------------------------------------------------------------
def span_view(mode: str, span: ReadableSpan) -> ReadableSpan:
    """`span` with v1.41.0 attributes, after checking the ones only the opt-in modes add."""
    attrs = dict(span.attributes or {})
    written = attrs.pop(CACHE_WRITE, None)
    if mode == "latest":
        assert CACHE_CREATION not in attrs, f"{span.name}: latest still has {CACHE_CREATION}"
        if written is not None:
            attrs[CACHE_CREATION] = written
    else:
        assert written == attrs.get(CACHE_CREATION), f"{span.name}: cache_write {written} != cache_creation"
    for name, total in ((AUDIO_INPUT, "gen_ai.usage.input_tokens"), (AUDIO_OUTPUT, "gen_ai.usage.output_tokens")):
        audio = attrs.pop(name, None)
        if audio is not None:
            assert 0 < audio <= attrs.get(total, -1), f"{span.name}: {name}={audio} outside {total}"
    amount, currency, source = attrs.pop(COST_AMOUNT, None), attrs.pop(COST_CURRENCY, None), attrs.pop(COST_SOURCE, None)
    cost = attrs.get(OUR_COST)
    if cost is None:
        assert (amount, currency, source) == (None, None, None), f"{span.name}: a draft cost without ours"
    else:
        expected = "provider" if attrs.get(OUR_PRICE_SOURCE) == "provider" else "local"
        assert (amount, currency, source) == (cost, "USD", expected), (
            f"{span.name}: draft cost {(amount, currency, source)} != {(cost, 'USD', expected)}")
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource, attributes=attrs,
        events=span.events, links=span.links, kind=span.kind, status=span.status, start_time=span.start_time,
        end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
    )


class SpanExporter(InMemorySpanExporter):
    """An in-memory exporter whose finished spans read in v1.41.0 whatever the mode."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def get_finished_spans(self) -> tuple[ReadableSpan, ...]:
        found = super().get_finished_spans()
        if self.mode == "v1_41":
            return found
        return tuple(span_view(self.mode, span) for span in found)


# --- metrics -----------------------------------------------------------------------------------------
def _check_counters(metrics: Mapping[str, Metric]) -> None:
    """The usage counters add up, over modalities, to the per-operation histograms' sums."""
    for name, histogram in COUNTERS.items():
        counter = metrics.get(name)
        if counter is None:
            continue
        assert isinstance(counter.data, Sum) and counter.data.is_monotonic, f"{name} is not a counter"
        added: dict[Attrs, float] = defaultdict(float)
        for point in counter.data.data_points:
            modality = (point.attributes or {}).get(MODALITY)
            assert modality in MODALITIES, f"{name}: modality {modality!r}"
            assert point.value >= 0, f"{name}: {point.value}"
            added[_key(point.attributes, without=MODALITY)] += point.value
        if histogram is None:
            continue
        sums = {_key(p.attributes): p.sum for p in metrics[histogram].data.data_points} if histogram in metrics else {}
        assert dict(added) == sums, f"{name} {dict(added)} != {histogram} {sums}"


def _as_v1_41(metrics: Mapping[str, Metric]) -> dict[str, list[Any]]:
    """The latest histograms' points under their v1.41.0 names and attributes."""
    out: dict[str, list[Any]] = defaultdict(list)
    for name, (old, extra) in HISTOGRAMS.items():
        metric = metrics.get(name)
        if metric is None:
            continue
        for point in metric.data.data_points:
            out[old].append(replace(point, attributes={**(point.attributes or {}), **dict(extra)}))
    return out


def _merged(name: str, points: Sequence[Any], like: Metric) -> Metric:
    seen = [_key(p.attributes) for p in points]
    assert len(seen) == len(set(seen)), f"{name}: two latest points with the same attributes"
    data = like.data
    assert isinstance(data, Histogram)
    return Metric(name=name, description=DESCRIPTIONS[name], unit=like.unit,
                  data=Histogram(data_points=list(points), aggregation_temporality=data.aggregation_temporality))


def _agree(name: str, v1_41: Metric | None, latest: Sequence[Any]) -> None:
    """In `both`: the latest points equal the v1.41.0 points of the inference operations, one for one."""
    old = {_key(p.attributes): p for p in (v1_41.data.data_points if v1_41 is not None else ())
           if (p.attributes or {}).get("gen_ai.operation.name") in INFERENCE}
    new = {_key(p.attributes): p for p in latest}
    assert set(new) == set(old), f"{name}: latest has {sorted(set(new) ^ set(old))} apart"
    for key, point in new.items():
        match = old[key]
        assert (match.count, match.sum, list(match.bucket_counts)) == (
            point.count, point.sum, list(point.bucket_counts)), f"{name} {dict(key)}: shapes disagree"


def scope_view(mode: str, metrics: Sequence[Metric]) -> list[Metric]:
    """One scope's metrics in v1.41.0, after the checks of the module docstring."""
    by_name = {m.name: m for m in metrics}
    if mode == "latest":
        for old in (TOKEN_USAGE, TIME_TO_FIRST_CHUNK):
            assert old not in by_name, f"latest mode still emits {old}"
    latest_names = set(HISTOGRAMS) | set(COUNTERS)
    _check_counters(by_name)
    translated = _as_v1_41(by_name)
    kept = [m for m in metrics if m.name not in latest_names]
    if mode == "both":
        for name in (OPERATION_DURATION, TIME_TO_FIRST_CHUNK, TOKEN_USAGE):
            _agree(name, by_name.get(name), translated.get(name, ()))
        return kept
    out: list[Metric] = []
    for metric in kept:
        if metric.name in translated:  # operation.duration: the operations that are not inference
            out.append(_merged(metric.name, [*metric.data.data_points, *translated.pop(metric.name)], metric))
        else:
            out.append(metric)
    for name, points in translated.items():
        like = next(by_name[n] for n, (old, _) in HISTOGRAMS.items() if old == name and n in by_name)
        out.append(_merged(name, points, like))
    return out


class MetricReader(InMemoryMetricReader):
    """An in-memory reader whose collections read in v1.41.0 whatever the mode."""

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def get_metrics_data(self) -> MetricsData | None:  # type: ignore[override]
        data = super().get_metrics_data()
        if data is None or self.mode == "v1_41":
            return data
        return MetricsData(resource_metrics=[
            ResourceMetrics(resource=rm.resource, schema_url=rm.schema_url, scope_metrics=[
                ScopeMetrics(scope=sm.scope, schema_url=sm.schema_url, metrics=scope_view(self.mode, sm.metrics))
                for sm in rm.scope_metrics
            ])
            for rm in data.resource_metrics
        ])
