"""Cost the provider reports wins: a gateway's own figure (OpenRouter's `usage.cost`, LiteLLM's
`x-litellm-response-cost` header) is what the span and the cost counter carry, with `provider` as the
price source and our computed figure kept beside it; a figure no real call can have is ignored."""

from __future__ import annotations

from typing import Any

import pytest

from otel_llm import semconv as sc
from tests.conftest import Api, FakeAPI, Reply, fixture_json, fixture_text, only_span, points, total

CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Say this is a test"}]}


def _with_usage_cost(cost: Any) -> dict[str, Any]:
    body = fixture_json("chat_completion.json")
    body["usage"]["cost"] = cost  # OpenRouter's shape: USD (credits) in the usage object
    return body


# OpenRouter's usage.cost is its own bill, and 0 on its free model variants, for real: that 0 stands too.
@pytest.mark.parametrize("cost", [0.0123, 0], ids=["priced", "openrouter-free"])
def test_a_cost_in_the_body_is_recorded_and_ours_kept_beside_it(
    cost: float, instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    fake.reply(Reply(body=_with_usage_cost(cost)))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    assert attrs[sc.COST_USD] == pytest.approx(cost)
    assert attrs[sc.PRICE_SOURCE] == sc.PRICE_SOURCE_PROVIDER
    assert attrs[sc.COST_COMPUTED_USD] > 0 and attrs[sc.COST_COMPUTED_USD] != pytest.approx(cost)
    assert total(reader, sc.COST) == pytest.approx(cost)


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


def _openrouter(cost: Any, byok: Any, upstream: Any) -> dict[str, Any]:
    body = _with_usage_cost(cost)
    body["usage"].update({"is_byok": byok, "cost_details": {"upstream_inference_cost": upstream}})
    return body


# With the app's own provider key (BYOK), OpenRouter's `usage.cost` is only its fee; the provider bills the
# inference itself (`cost_details.upstream_inference_cost`). The call cost both. OpenRouter fills the upstream
# figure on other calls too, equal to `usage.cost` and already in it.
@pytest.mark.parametrize(("byok", "upstream", "cost"), [
    (True, 0.019, 0.01995),  # the fee and what the provider billed
    (False, 0.00095, 0.00095),  # not BYOK: usage.cost is the whole bill, the upstream figure part of it
    (True, "n/a", None),  # BYOK with no upstream figure: the provider's share unknown, our own price stands
], ids=["byok", "not-byok", "byok-no-upstream"])
def test_an_openrouter_byok_call_costs_its_fee_and_the_providers_bill(
    byok: bool, upstream: Any, cost: float | None, instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any,
    reader: Any,
) -> None:
    fake.reply(Reply(body=_openrouter(0.00095, byok, upstream)))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    if cost is None:
        assert attrs[sc.PRICE_SOURCE].startswith("genai-prices:") and attrs[sc.COST_USD] > 0.00095
    else:
        assert (attrs[sc.COST_USD], attrs[sc.PRICE_SOURCE]) == (pytest.approx(cost), sc.PRICE_SOURCE_PROVIDER)
    assert total(reader, sc.COST) == pytest.approx(attrs[sc.COST_USD])


# LiteLLM sends `x-litellm-response-cost: 0` when it could not price a call, not only when the call was free:
# for a model priced in its own config (BerriAI/litellm#13790), and on routes whose cost it does not carry
# into the header, /v1/responses (#26475) and /v1/messages (#23981). Taken as the provider's figure, every
# such call was $0 in the counter, in silence.
@pytest.mark.parametrize("zero", ["0", "0.0"])
@pytest.mark.parametrize("endpoint", ["chat.completions.create", "responses.create"])
def test_a_litellm_zero_on_a_call_with_tokens_is_not_taken_for_free(
    zero: str, endpoint: str, instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = fixture_json("chat_completion.json" if endpoint.startswith("chat") else "response.json")
    fake.reply(Reply(body=body, headers={"x-litellm-response-cost": zero}))
    request = CHAT if endpoint.startswith("chat") else {"model": "gpt-4.1", "input": "Say this is a test"}
    gateway_api.call(endpoint, **request)
    attrs = only_span(spans).attributes
    assert attrs[sc.COST_USD] > 0 and attrs[sc.PRICE_SOURCE].startswith("genai-prices:")
    assert total(reader, sc.COST) == pytest.approx(attrs[sc.COST_USD])
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "x-litellm-response-cost" in r.getMessage()]
    assert len(said) == 1 and "gateway.example.com" in said[0], said


def test_a_litellm_zero_on_an_answer_from_its_own_cache_stands(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    # LiteLLM's proxy cache answered (it says so with x-litellm-cache-key): no provider was called, and the 0
    # is what the call cost.
    fake.reply(Reply(body=fixture_json("chat_completion.json"),
                     headers={"x-litellm-response-cost": "0.0", "x-litellm-cache-key": "586bf3f3c1bf5aecb55bd9996494d3bb"}))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    assert (attrs[sc.COST_USD], attrs[sc.PRICE_SOURCE]) == (0.0, sc.PRICE_SOURCE_PROVIDER)
    assert not [r for r in caplog.records if "x-litellm-response-cost" in r.getMessage()]


def test_a_litellm_zero_on_a_model_we_cannot_price_is_counted_unpriced_not_free(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    body = fixture_json("chat_completion.json")
    body["model"] = "acme/unknown-model-9000"
    fake.reply(Reply(body=body, headers={"x-litellm-response-cost": "0"}))
    gateway_api.call("chat.completions.create", model="acme/unknown-model-9000", messages=CHAT["messages"])
    attrs = only_span(spans).attributes
    assert attrs[sc.UNPRICED] is True and sc.COST_USD not in attrs
    assert total(reader, sc.CALLS_UNPRICED) == 1 and not points(reader, sc.COST)


def test_a_litellm_zero_on_a_call_with_no_billable_tokens_stands(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    body = fixture_json("chat_completion.json")
    body["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    fake.reply(Reply(body=body, headers={"x-litellm-response-cost": "0"}))
    gateway_api.call("chat.completions.create", **CHAT)
    attrs = only_span(spans).attributes
    assert (attrs[sc.COST_USD], attrs[sc.PRICE_SOURCE]) == (0.0, sc.PRICE_SOURCE_PROVIDER)
    assert not [r for r in caplog.records if "x-litellm-response-cost" in r.getMessage()]

