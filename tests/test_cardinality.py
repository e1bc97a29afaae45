"""Caller-chosen names cannot grow our memory, flood the log or stall a collection; the totals stay exact.

Model names and user ids often come from an end user's request (a gateway, an agent framework). The
recording path is driven directly (Telemetry.start + Call.complete with the SDK's own response
objects), as 200,000 SDK round trips would only time the SDK.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_llm import OpenAIInstrumentor
from otel_llm import semconv as sc
from otel_llm.extract import usage_of
from otel_llm.ledger import MODEL_LIMIT, OVERFLOW_VALUE, SERIES_LIMIT
from otel_llm.pricing import CACHE_LIMIT, WARN_LIMIT
from tests.conftest import collect, fixture_json

CALLS = 200_000
UNPRICED_EVERY = 50  # these calls answer with a model nobody prices


def _rss_bytes() -> int:
    fields = Path("/proc/self/statm").read_text().split()
    import os

    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def bare() -> Any:
    """Instrumented with providers that keep no spans (200,000 finished spans would be the test's own leak)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=provider)
    yield instrumentor, reader
    instrumentor.uninstrument()
    provider.shutdown()


@pytest.mark.slow
def test_200k_distinct_models_and_users_stay_bounded_and_the_totals_exact(
    bare: Any, caplog: pytest.LogCaptureFixture
) -> None:
    instrumentor, reader = bare
    telemetry = instrumentor.telemetry
    client = openai.OpenAI(api_key="sk-test", base_url="https://gateway.example.com/v1")
    priced = ChatCompletion.model_validate(fixture_json("chat_completion.json"))
    usage = usage_of(priced.usage)
    assert usage is not None
    rates = telemetry.prices.rates("openai_compatible", "https://gateway.example.com/v1", priced.model)
    assert rates is not None
    one_cost = rates.cost(usage).usd

    def drive(start: int, stop: int) -> None:
        for i in range(start, stop):
            call = telemetry.start("chat", client, {"model": f"attacker-model-{i}", "user": f"user-{i}"}, False)
            if i % UNPRICED_EVERY:
                call.complete(priced)
            else:
                call.complete(priced.model_copy(update={"model": f"attacker-answer-{i}"}))

    drive(0, 5_000)  # past every cap: what is allocated now is the steady state
    reader.get_metrics_data()
    before = _rss_bytes()
    drive(5_000, CALLS)
    grown = _rss_bytes() - before
    data = collect(reader)

    assert grown < 40 * 1024 * 1024, f"RSS grew {grown / 2**20:.0f} MB over {CALLS - 5_000} calls"
    # The collection completes, and the sums still add up to every call.
    calls = data[sc.CALLS]
    assert sum(p.value for p in calls) == CALLS
    unpriced = CALLS // UNPRICED_EVERY
    assert sum(p.value for p in data[sc.CALLS_UNPRICED]) == unpriced
    assert sum(p.value for p in data[sc.COST]) == pytest.approx((CALLS - unpriced) * one_cost, rel=1e-9)
    tokens = {t: sum(p.value for p in data[sc.TOKENS] if p.attributes.get(sc.GEN_AI_TOKEN_TYPE) == t)
              for t in (sc.TOKEN_INPUT, sc.TOKEN_OUTPUT)}
    assert tokens == {sc.TOKEN_INPUT: CALLS * usage.input, sc.TOKEN_OUTPUT: CALLS * usage.output}
    # Every structure is at its bound, with the overflow visible.
    ledger = telemetry.ledger
    assert ledger.series <= SERIES_LIMIT and len(ledger._rows) <= SERIES_LIMIT + 1
    assert len(ledger.models.seen) == MODEL_LIMIT and len(ledger.users) == telemetry.settings.metric_user_limit
    models = {p.attributes.get(sc.GEN_AI_REQUEST_MODEL) for p in calls}
    assert OVERFLOW_VALUE in models and len(models) <= MODEL_LIMIT + 2
    assert any(p.attributes.get(sc.METRIC_OVERFLOW) is True for p in calls)
    for histogram in (sc.GEN_AI_CLIENT_OPERATION_DURATION, sc.GEN_AI_CLIENT_TOKEN_USAGE):
        assert {p.attributes[sc.GEN_AI_REQUEST_MODEL] for p in data[histogram]} <= ledger.models.seen | {OVERFLOW_VALUE}
    assert len(telemetry.prices._cache) <= CACHE_LIMIT
    assert len(telemetry.prices.unpriced_models) == WARN_LIMIT
    # The log says so a bounded number of times, not once per name.
    warnings = [r for r in caplog.records if r.name == "otel_llm" and r.levelno >= logging.WARNING]
    assert WARN_LIMIT < len(warnings) <= WARN_LIMIT + 10, len(warnings)


def test_overflow_series_keep_the_budget_total_exact(bare: Any) -> None:
    instrumentor, reader = bare
    telemetry = instrumentor.telemetry
    telemetry.ledger.series_limit = 10
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1")
    priced = ChatCompletion.model_validate(fixture_json("chat_completion.json"))
    for i in range(40):
        telemetry.start("chat", client, {"model": "gpt-4.1", "user": f"u{i}"}, False).complete(priced)
    data = collect(reader)
    costs = data[sc.COST]
    single = telemetry.prices.rates("openai", "https://api.openai.com/v1", priced.model)
    usage = usage_of(priced.usage)
    assert single is not None and usage is not None
    assert sum(p.value for p in costs) == pytest.approx(40 * single.cost(usage).usd, rel=1e-12)
    overflow = [p for p in costs if p.attributes.get(sc.METRIC_OVERFLOW) is True]
    # One overflow series, keeping only what the row adds (the prompt size), not the user.
    assert len(overflow) == 1 and overflow[0].value > 0
    assert dict(overflow[0].attributes) == {sc.METRIC_OVERFLOW: True, sc.PROMPT_SIZE: "medium"}
    assert sum(len(v) for v in data.values()) < 40  # not one series per user
