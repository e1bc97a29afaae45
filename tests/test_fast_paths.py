"""The hot-path shortcuts taken for speed (issue 20) record exactly what the general paths record."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
import wrapt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_llm import conventions as cv
from otel_llm import semconv as sc
from otel_llm.pricing import Usage
from otel_llm.provider_cost import ProviderCost, cost_from_headers

USAGE = Usage(1117, 142, 1024, 0, 64)
OUTCOMES = [
    cv.Outcome("chat", 0.41, None, USAGE, None),
    cv.Outcome("chat", 0.41, 0.05, USAGE, None),  # a stream
    cv.Outcome("embeddings", 0.2, None, Usage(12), None),
    cv.Outcome("chat", 0.3, None, None, "RateLimitError"),  # a failure, no usage
    cv.Outcome("chat", 0.01, None, USAGE, None, metered=False),  # a response cache hit
    cv.Outcome("chat", 0.3, 0.1, USAGE, "APITimeoutError"),
]
STANDARD = {
    sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "o4-mini",
    sc.GEN_AI_RESPONSE_MODEL: "o4-mini-2025-04-16", sc.SERVER_ADDRESS: "api.openai.com", sc.SERVER_PORT: 443,
}


def _points(record: Any) -> list[tuple[str, tuple[tuple[str, Any], ...], int, float]]:
    reader = InMemoryMetricReader()
    metrics = cv.StandardMetrics(MeterProvider(metric_readers=[reader]).get_meter("t"), cv.V1_41)
    for outcome in OUTCOMES:
        record(metrics, outcome)
    data = reader.get_metrics_data()
    assert data is not None
    return sorted(
        (metric.name, tuple(sorted(point.attributes.items())), point.count, point.sum)
        for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
        for point in metric.data.data_points
    )


def test_v1_41_direct_recording_equals_the_records_list() -> None:
    def general(metrics: cv.StandardMetrics, outcome: cv.Outcome) -> None:
        for name, value, extra in cv.metric_records(cv.V1_41, outcome):
            metrics._histograms[name].record(value, {**STANDARD, **dict(extra)})

    fast = _points(lambda metrics, outcome: metrics.record(outcome, STANDARD))
    assert fast == _points(general)
    assert {name for name, *_ in fast} == {
        sc.GEN_AI_CLIENT_OPERATION_DURATION, sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, sc.GEN_AI_CLIENT_TOKEN_USAGE
    }


@pytest.mark.parametrize("headers", [
    httpx2.Headers({"X-LiteLLM-Response-Cost": "0.0012", "content-type": "application/json"}),
    {"X-LiteLLM-Response-Cost": "0.0012"},
    [("x-litellm-response-cost", "0.0012")],
])
def test_header_cost_is_read_case_insensitively_from_any_headers(headers: Any) -> None:
    assert cost_from_headers(headers) == ProviderCost(0.0012, "litellm", "x-litellm-response-cost")


def test_no_cost_header_is_none() -> None:
    assert cost_from_headers(httpx2.Headers({"content-type": "application/json"})) is None


def test_a_stream_proxy_takes_the_place_of_the_sdks_pass_through_iterator_and_of_nothing_else() -> None:
    """sdk.chunk_source: a `for` loop over our proxy iterates the SDK stream's `_iterator` only where the
    installed SDK's `__iter__` / `__aiter__` just passes its items on; any other shape keeps the stream's own."""
    import openai

    from otel_llm import sdk

    def bare(cls: type) -> Any:
        stream = object.__new__(cls)
        stream._iterator = iter(())
        return stream

    stream, astream = bare(openai.Stream), bare(openai.AsyncStream)
    assert sdk.chunk_source(stream, False) is stream._iterator
    assert sdk.chunk_source(astream, True) is astream._iterator

    class Counting(openai.Stream):  # type: ignore[type-arg]
        seen = 0

        def __iter__(self) -> Any:
            for item in self._iterator:
                self.seen += 1
                yield item

    class NoIterator:
        def __iter__(self) -> Any:
            yield from ()

    class Wrapped(openai.Stream):  # type: ignore[type-arg]
        pass

    hooked: list[Any] = []

    def hook(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:  # another library's per-stream hook
        hooked.append(instance)
        return wrapped(*args, **kwargs)

    Wrapped.__iter__ = wrapt.FunctionWrapper(openai.Stream.__iter__, hook)  # type: ignore[method-assign]
    wrapped = bare(Wrapped)
    for other in (bare(Counting), NoIterator(), object.__new__(openai.Stream), wrapped):  # no `_iterator` yet; wrapped
        assert sdk.chunk_source(other, False) is other
    list(wrapped)
    assert hooked == [wrapped]  # the stream's own (wrapped) iteration is what a proxy would run
    assert sdk.chunk_source(stream, True) is stream  # a sync stream has no pass-through `__aiter__`
