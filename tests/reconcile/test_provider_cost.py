"""The cost a gateway reports, on each gateway's documented response shape, parsed by the real SDK."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from otel_llm.provider_cost import ProviderCost, cost_from_headers, cost_from_response

# OpenRouter's usage accounting example (openrouter.ai/docs/use-cases/usage-accounting), in a completion.
OPENROUTER_USAGE = {
    "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 0}, "cost": 0.95,
    "cost_details": {"upstream_inference_cost": 19}, "prompt_tokens": 194,
    "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100, "audio_tokens": 0}, "total_tokens": 196,
}
# LLM Gateway's cost breakdown example (docs.llmgateway.io/features/cost-breakdown).
LLMGATEWAY_USAGE = {
    "prompt_tokens": 10, "completion_tokens": 15, "total_tokens": 25, "cost_usd_total": 0.000125,
    "cost_usd_input": 0.000025, "cost_usd_output": 0.0001, "cost_usd_cached_input": 0, "cost_usd_request": 0,
    "cost_usd_data_storage": 0.00000025,
}


def completion(usage: dict[str, Any] | None) -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": "gen-1", "object": "chat.completion", "created": 1, "model": "openai/gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
        "usage": usage,
    })


def test_openrouter_usage_cost() -> None:
    assert cost_from_response(completion(OPENROUTER_USAGE)) == ProviderCost(0.95, "openrouter", "usage.cost")


def test_openrouter_stream_last_chunk_and_plain_dict() -> None:
    chunk = ChatCompletionChunk.model_validate({
        "id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "openai/gpt-4o", "choices": [],
        "usage": OPENROUTER_USAGE})
    assert cost_from_response(chunk) == ProviderCost(0.95, "openrouter", "usage.cost")
    assert cost_from_response({"usage": {"cost": "0.5"}}) == ProviderCost(0.5, "openrouter", "usage.cost")


def test_llmgateway_cost_usd_total() -> None:
    assert cost_from_response(completion(LLMGATEWAY_USAGE)) == ProviderCost(0.000125, "llmgateway",
                                                                           "usage.cost_usd_total")


def test_litellm_response_cost_header() -> None:
    headers = httpx.Headers({"X-LiteLLM-Response-Cost": "0.000415", "x-litellm-total-tokens": "1874"})
    assert cost_from_headers(headers) == ProviderCost(0.000415, "litellm", "x-litellm-response-cost")
    assert cost_from_headers({"x-litellm-response-cost": b"1.5"}) == ProviderCost(1.5, "litellm",
                                                                               "x-litellm-response-cost")


@pytest.mark.parametrize("wrap", [httpx.Headers, dict], ids=["httpx", "mapping"])
def test_a_litellm_zero_says_whether_its_cache_answered(wrap: Any) -> None:
    hit = cost_from_headers(wrap({"x-litellm-response-cost": "0.0", "X-LiteLLM-Cache-Key": "586bf3f3"}))
    unpriced = cost_from_headers(wrap({"x-litellm-response-cost": "0"}))
    assert hit is not None and hit.from_cache and not hit.zero_is_unknown
    assert unpriced is not None and not unpriced.from_cache and unpriced.zero_is_unknown


def test_openai_itself_reports_no_cost() -> None:
    assert cost_from_response(completion({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})) is None
    assert cost_from_response(completion(None)) is None
    assert cost_from_headers(httpx.Headers({"x-request-id": "req_1"})) is None


class Hostile:
    """A response whose every attribute access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("boom")


@pytest.mark.parametrize("value", [-0.01, float("nan"), float("inf"), "1e9", "free", True, [], {"usd": 1}, "nan"])
def test_nonsense_is_ignored_never_raised(value: Any) -> None:
    assert cost_from_response({"usage": {"cost": value}}) is None
    assert cost_from_headers({"x-litellm-response-cost": value}) is None


def test_anything_at_all_is_tolerated() -> None:
    for thing in (None, 1, "text", object(), Hostile(), {"usage": Hostile()}, {"usage": 3}):
        assert cost_from_response(thing) is None
        assert cost_from_headers(thing) is None
