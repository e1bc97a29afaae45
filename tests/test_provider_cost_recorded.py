"""Cost the provider reports wins: a gateway's own figure (OpenRouter's `usage.cost`, LiteLLM's
`x-litellm-response-cost` header) is what the span and the cost counter carry, with `provider` as the
price source and our computed figure kept beside it; a figure no real call can have is ignored."""

from __future__ import annotations

from typing import Any

import pytest

from otel_llm import semconv as sc
from tests.conftest import Api, FakeAPI, Reply, fixture_json, fixture_text, only_span, total

CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Say this is a test"}]}


def _with_usage_cost(cost: Any) -> dict[str, Any]:
    body = fixture_json("chat_completion.json")
    body["usage"]["cost"] = cost  # OpenRouter's shape: USD (credits) in the usage object
    return body


def test_a_cost_in_the_body_is_recorded_and_ours_kept_beside_it(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    fake.reply(Reply(body=_with_usage_cost(0.0123)))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    assert attrs[sc.COST_USD] == pytest.approx(0.0123)
    assert attrs[sc.PRICE_SOURCE] == sc.PRICE_SOURCE_PROVIDER
    assert attrs[sc.COST_COMPUTED_USD] > 0 and attrs[sc.COST_COMPUTED_USD] != pytest.approx(0.0123)
    assert total(reader, sc.COST) == pytest.approx(0.0123)


def test_a_cost_header_is_recorded(instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    fake.reply(Reply(body=fixture_json("chat_completion.json"), headers={"x-litellm-response-cost": "0.00042"}))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    assert (attrs[sc.COST_USD], attrs[sc.PRICE_SOURCE]) == (pytest.approx(0.00042), "provider")
    assert total(reader, sc.COST) == pytest.approx(0.00042)


def test_a_model_we_cannot_price_is_priced_by_the_provider(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    body = _with_usage_cost(0.5)
    body["model"] = "acme/unknown-model-9000"
    fake.reply(Reply(body=body))
    gateway_api.call("chat.completions.create", model="acme/unknown-model-9000", messages=CHAT["messages"])
    attrs = only_span(spans).attributes
    assert attrs[sc.COST_USD] == pytest.approx(0.5) and sc.UNPRICED not in attrs and sc.COST_COMPUTED_USD not in attrs
    assert total(reader, sc.CALLS_UNPRICED) == 0 and total(reader, sc.COST) == pytest.approx(0.5)


@pytest.mark.parametrize("hostile", [-1, 1e20, "NaN", True, "a lot"])
def test_a_reported_cost_no_real_call_has_is_ignored(
    hostile: Any, instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    fake.reply(Reply(body=_with_usage_cost(hostile)))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    assert attrs[sc.PRICE_SOURCE].startswith("genai-prices:") and sc.COST_COMPUTED_USD not in attrs
    assert total(reader, sc.COST) == pytest.approx(attrs[sc.COST_USD]) and attrs[sc.COST_USD] < 1


def test_a_streams_usage_chunk_carries_the_cost(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    sse = fixture_text("chat_stream_usage.sse").replace('"total_tokens": 91,', '"total_tokens": 91, "cost": 0.00777,')
    assert '"cost": 0.00777' in sse
    fake.reply(Reply(sse=sse))
    chunks = gateway_api.consume(gateway_api.call("chat.completions.create", **CHAT, stream=True,
                                                   stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None  # the app asked for it: it sees it
    attrs = only_span(spans).attributes
    assert (attrs[sc.COST_USD], attrs[sc.PRICE_SOURCE]) == (pytest.approx(0.00777), "provider")
    assert total(reader, sc.COST) == pytest.approx(0.00777)
