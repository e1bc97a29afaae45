"""The view `make test-modes` reads through (tests/semconv_view.py) can fail: a latest output that
disagrees with the call, or a run that did not switch modes, fails the test that reads it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_llm import OpenAIInstrumentor
from tests import semconv_view as view
from tests.conftest import Api, FakeAPI, collect, finished

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1"}


@pytest.fixture
def opt_in(fake: FakeAPI) -> Iterator[Any]:
    """`opt_in(mode)`: a sync client instrumented in `mode`, read through the view of `mode`."""
    made: list[tuple[OpenAIInstrumentor, Api, MeterProvider]] = []

    def start(mode: str, view_mode: str | None = None) -> tuple[Api, view.SpanExporter, view.MetricReader]:
        spans, reader = view.SpanExporter(view_mode or mode), view.MetricReader(view_mode or mode)
        tracer = TracerProvider()
        tracer.add_span_processor(SimpleSpanProcessor(spans))
        meter = MeterProvider(metric_readers=[reader])
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=tracer, meter_provider=meter, semconv_mode=mode)
        api = Api("sync", fake, "https://api.openai.com/v1")
        made.append((instrumentor, api, meter))
        return api, spans, reader

    yield start
    for instrumentor, api, meter in made:
        instrumentor.uninstrument()
        api.close()
        meter.shutdown()


@pytest.mark.parametrize("mode", ["latest", "both"])
def test_the_latest_output_reads_back_as_the_v1_41_figures(opt_in: Any, mode: str) -> None:
    api, spans, reader = opt_in(mode)
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)

    data = collect(reader)
    tokens = {dict(p.attributes)["gen_ai.token.type"]: p.sum for p in data[view.TOKEN_USAGE]}
    span = finished(spans)[0]
    assert tokens == {"input": span.attributes["gen_ai.usage.input_tokens"],
                      "output": span.attributes["gen_ai.usage.output_tokens"]}
    assert [p.count for p in data[view.OPERATION_DURATION]] == [1]
    assert not {view.COST_AMOUNT, view.CACHE_WRITE} & set(span.attributes)  # checked, then set aside
    assert not set(view.HISTOGRAMS) & set(data)


def test_a_run_that_did_not_switch_modes_fails(opt_in: Any) -> None:
    api, spans, reader = opt_in("v1_41", view_mode="latest")
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)

    with pytest.raises(AssertionError, match="draft cost"):
        finished(spans)
    with pytest.raises(AssertionError, match=r"still emits gen_ai\.client\.token\.usage"):
        collect(reader)


def test_usage_counters_that_do_not_add_up_fail() -> None:
    reader = view.MetricReader("latest")
    meter = MeterProvider(metric_readers=[reader])
    m = meter.get_meter("t")
    m.create_histogram("gen_ai.client.inference.operation.input_tokens").record(100, CHAT)
    m.create_counter("gen_ai.client.inference.usage.input_tokens").add(90, {**CHAT, view.MODALITY: "unknown"})

    with pytest.raises(AssertionError, match=r"usage\.input_tokens"):
        reader.get_metrics_data()
    meter.shutdown()


def test_in_both_a_latest_point_that_differs_from_v1_41_fails() -> None:
    reader = view.MetricReader("both")
    meter = MeterProvider(metric_readers=[reader])
    m = meter.get_meter("t")
    m.create_histogram(view.OPERATION_DURATION).record(1.0, CHAT)
    m.create_histogram("gen_ai.client.inference.duration").record(2.0, CHAT)

    with pytest.raises(AssertionError, match="shapes disagree"):
        reader.get_metrics_data()
    meter.shutdown()


@pytest.mark.parametrize(("attrs", "match"), [
    ({"otel_llm.cost.usd": 0.5, view.COST_AMOUNT: 0.4, view.COST_CURRENCY: "USD", view.COST_SOURCE: "local"},
     "draft cost"),
    ({"otel_llm.cost.usd": 0.5, "otel_llm.price.source": "provider", view.COST_AMOUNT: 0.5,
      view.COST_CURRENCY: "USD", view.COST_SOURCE: "local"}, "draft cost"),
    ({view.COST_AMOUNT: 0.5, view.COST_CURRENCY: "USD", view.COST_SOURCE: "local"}, "without ours"),
    ({"gen_ai.usage.input_tokens": 10, view.AUDIO_INPUT: 11}, "audio.input_tokens"),
    ({view.CACHE_CREATION: 5}, "latest still has"),
])
def test_latest_span_attributes_that_disagree_with_the_call_fail(attrs: dict[str, Any], match: str) -> None:
    spans = view.SpanExporter("latest")
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    tracer.get_tracer("t").start_span("chat gpt-4.1", attributes=attrs).end()

    with pytest.raises(AssertionError, match=match):
        spans.get_finished_spans()
