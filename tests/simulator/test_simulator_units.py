"""The simulator's pure parts, without a server: tokenizer, generator, cache, config, fault draws."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sim_helpers import FAST, chat_prompt_tokens, tokens

from otel_llm.simulator import SimulatorConfig, count_tokens, is_reasoning_model, message_pieces, tokenize
from otel_llm.simulator.app import Request, SimulatorApp
from otel_llm.simulator.cache import PromptCache
from otel_llm.simulator.generate import generate
from otel_llm.simulator.replies import JsonReply


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("don't  stop", ["don", "'", "t", "stop"]),
        ("gpt-4.1 costs $2.00", ["gpt", "-", "4", ".", "1", "costs", "$", "2", ".", "00"]),
        ("", []),
        ("  \n\t", []),
    ],
)
def test_tokenizer_rule(text: str, pieces: list[str]) -> None:
    assert tokenize(text) == pieces
    assert count_tokens(text) == len(pieces) == tokens(text)


def test_message_framing_costs_three_per_message_plus_three() -> None:
    pieces = message_pieces([("system", "Be brief."), ("user", "Hi there")])
    assert len(pieces) == chat_prompt_tokens("Be brief.", "Hi there") == 3 + 3 + 3 + 2 + 3


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [("o4-mini", True), ("o3", True), ("gpt-5-mini", True), ("gpt-4o", False), ("omni-x", False)],
)
def test_reasoning_models(model: str, reasoning: bool) -> None:
    assert is_reasoning_model(model) is reasoning


def test_generation_is_deterministic_and_retokenizes_exactly() -> None:
    first = generate(42, FAST, reasoning=False, max_tokens=None)
    assert first == generate(42, FAST, reasoning=False, max_tokens=None)
    assert first != generate(43, FAST, reasoning=False, max_tokens=None)
    assert FAST.min_output_tokens <= len(first.deltas) <= FAST.max_output_tokens
    assert tokens(first.text) == len(first.deltas) == first.output_tokens
    assert all(tokens(delta) == 1 for delta in first.deltas)
    assert first.finish_reason == "stop" and first.text.endswith(".")


def test_max_tokens_caps_reasoning_plus_visible() -> None:
    capped = generate(7, FAST, reasoning=True, max_tokens=10)
    assert capped.output_tokens == 10 and capped.finish_reason == "length"
    no_effort = generate(7, FAST, reasoning=True, max_tokens=None, effort="none")
    assert no_effort.reasoning_tokens == 0


def test_cache_matches_prefixes_in_blocks_and_expires() -> None:
    now = [0.0]
    cache = PromptCache(min_tokens=4, increment=2, ttl=10, clock=lambda: now[0])
    prompt = [str(i) for i in range(9)]
    assert cache.lookup_and_store("m", prompt) == 0
    assert cache.lookup_and_store("m", prompt) == 8  # blocks end at 4, 6, 8
    assert cache.lookup_and_store("m", prompt[:5] + ["x"] * 4) == 4
    assert cache.lookup_and_store("other-model", prompt) == 0
    assert cache.lookup_and_store("m", prompt[:3]) == 0  # below the minimum
    now[0] = 100.0
    assert cache.lookup_and_store("m", prompt) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"rate_429": 0.7, "rate_500": 0.5},
        {"rate_401": -0.1},
        {"ttft_min": 0.5, "ttft_max": 0.1},
        {"cache_min_tokens": 0},
    ],
)
def test_config_rejects_invalid_values(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(**fields)


def _chat(app: SimulatorApp, headers: dict[str, str] | None = None) -> JsonReply:
    body = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}).encode()
    reply = app.handle(
        Request("POST", "/v1/chat/completions", {"authorization": "Bearer sk-test", **(headers or {})}, body)
    )
    assert isinstance(reply, JsonReply)
    return reply


def test_random_faults_follow_their_rates_reproducibly() -> None:
    config = SimulatorConfig(latency_scale=0, rate_429=0.2, rate_500=0.1, rate_503=0.1, seed=3)
    runs = []
    for _ in range(2):
        app = SimulatorApp(config)
        runs.append([_chat(app).status for _ in range(1000)])
    assert runs[0] == runs[1]
    share = {status: runs[0].count(status) / 1000 for status in (200, 429, 500, 503)}
    assert share[200] == pytest.approx(0.6, abs=0.05)
    assert share[429] == pytest.approx(0.2, abs=0.04)
    assert share[500] == pytest.approx(0.1, abs=0.03)
    assert share[503] == pytest.approx(0.1, abs=0.03)


def test_fail_sequence_follows_the_sdk_retry_count_without_a_request_id() -> None:
    app = SimulatorApp(FAST)
    statuses = [
        _chat(app, {"x-simulator-fail-sequence": "429,503", "x-stainless-retry-count": str(attempt)}).status
        for attempt in range(4)
    ]
    assert statuses == [429, 503, 200, 200]


def test_invalid_fault_header_is_a_400() -> None:
    reply = _chat(SimulatorApp(FAST), {"x-simulator-fail": "teapot"})
    assert reply.status == 400 and "teapot" in reply.body["error"]["message"]
