"""Every endpoint through the real openai SDK, sync and async (the `api` fixture runs each test twice)."""

from __future__ import annotations

import array
import base64
import json
import time
from typing import Any

import openai
import pytest
from sim_helpers import Api, chat_prompt_tokens, post, tokens

from otel_llm.simulator import Simulator

CASE_MODELS = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")
USER: list[Any] = [{"role": "user", "content": "Where is my refund, please?"}]


# --- chat completions ---------------------------------------------------------------------------
@pytest.mark.parametrize("model", CASE_MODELS)
def test_chat_usage_matches_the_documented_tokenizer(api: Api, model: str) -> None:
    messages = [{"role": "system", "content": "You are a support bot."}, *USER]
    reply = api.call("chat.completions.create", model=model, messages=messages)
    text = reply.choices[0].message.content
    assert reply.model == model and reply.object == "chat.completion"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == chat_prompt_tokens("You are a support bot.", USER[0]["content"])
    assert reply.usage.completion_tokens == tokens(text)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_is_deterministic_given_the_prompt(api: Api) -> None:
    first, again, other = (
        api.call("chat.completions.create", model="gpt-4.1", messages=[{"role": "user", "content": text}])
        for text in ("same prompt", "same prompt", "another prompt")
    )
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream_sends_a_usage_chunk_only_when_asked(api: Api, include_usage: bool) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = api.stream("chat.completions.create", model="gpt-4.1", messages=USER, **options)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    if not include_usage:
        assert usage_chunks == []
        return
    assert usage_chunks == [chunks[-1]] and chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == chat_prompt_tokens(USER[0]["content"])
    assert chunks[-1].usage.completion_tokens == tokens(text)


def test_chat_stream_accumulates_with_the_sdk_helper(api: Api) -> None:
    completion = api.chat_stream(model="gpt-4o-mini", messages=USER, stream_options={"include_usage": True})
    assert completion.usage.completion_tokens == tokens(completion.choices[0].message.content)


def test_chat_n_choices_and_max_tokens(api: Api) -> None:
    reply = api.call("chat.completions.create", model="gpt-4.1", messages=USER, n=3, max_tokens=5)
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert all(choice.finish_reason == "length" for choice in reply.choices)
    assert all(tokens(choice.message.content) == 5 for choice in reply.choices)
    assert reply.usage.completion_tokens == 15


def test_chat_stream_with_n_choices(api: Api) -> None:
    chunks = api.stream("chat.completions.create", model="gpt-4.1", messages=USER, n=2,
                        stream_options={"include_usage": True})  # fmt: skip
    texts = ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
             for i in (0, 1)]  # fmt: skip
    assert chunks[-1].usage.completion_tokens == tokens(texts[0]) + tokens(texts[1])


def test_chat_ignores_tools_and_content_parts(api: Api) -> None:
    tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    parts = [{"type": "text", "text": "Hello"}, {"type": "image_url", "image_url": {"url": "data:,"}},
             {"type": "text", "text": "there!"}]  # fmt: skip
    reply = api.call("chat.completions.create", model="gpt-4.1", messages=[{"role": "user", "content": parts}],
                     tools=[tool], tool_choice="auto", temperature=0.2)  # fmt: skip
    assert reply.usage.prompt_tokens == chat_prompt_tokens("Hello there!")


def test_reasoning_model_bills_hidden_reasoning_tokens(api: Api) -> None:
    reply = api.call("chat.completions.create", model="o4-mini", messages=USER, reasoning_effort="high")
    usage = reply.usage
    assert usage.completion_tokens_details.reasoning_tokens > 0
    assert usage.completion_tokens == usage.completion_tokens_details.reasoning_tokens + tokens(
        reply.choices[0].message.content
    )


def test_reasoning_can_use_up_max_completion_tokens(api: Api) -> None:
    reply = api.call("chat.completions.create", model="gpt-5-mini", messages=USER, max_completion_tokens=16)
    assert reply.usage.completion_tokens == 16
    assert reply.choices[0].finish_reason == "length"


def test_repeated_long_prompt_reports_cached_tokens(make_sim: Any, make_api: Any) -> None:
    api = make_api(make_sim(cache_min_tokens=64, cache_increment=32))
    system = " ".join(f"rule{i} applies." for i in range(40))  # 120 tokens
    first, second = (
        api.call("chat.completions.create", model="gpt-4.1",
                 messages=[{"role": "system", "content": system}, {"role": "user", "content": question}])
        for question in ("Where is my order?", "Cancel my plan.")
    )  # fmt: skip
    # Shared prefix: the system message framed (3 + 120) and the user frame (3), then the texts differ.
    shared = 3 + tokens(system) + 3
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 64 + (shared - 64) // 32 * 32 == 96
    same_model_only = api.call("chat.completions.create", model="deepseek-v3.2",
                               messages=[{"role": "system", "content": system}, *USER])  # fmt: skip
    assert same_model_only.usage.prompt_tokens_details.cached_tokens == 0


def test_short_prompts_are_not_cached(api: Api) -> None:
    for _ in range(2):
        reply = api.call("chat.completions.create", model="gpt-4.1", messages=USER)
    assert reply.usage.prompt_tokens_details.cached_tokens == 0


# --- legacy completions -------------------------------------------------------------------------
def test_completions_plain_and_streamed(api: Api) -> None:
    reply = api.call("completions.create", model="gpt-3.5-turbo-instruct", prompt=["Say hi", "Say bye now"])
    assert reply.object == "text_completion" and len(reply.choices) == 2
    assert reply.usage.prompt_tokens == tokens("Say hi") + tokens("Say bye now")
    assert reply.usage.completion_tokens == sum(tokens(choice.text) for choice in reply.choices)
    assert all(tokens(choice.text) <= 16 for choice in reply.choices)  # OpenAI's default max_tokens

    chunks = api.stream("completions.create", model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=40,
                        stream_options={"include_usage": True})  # fmt: skip
    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == tokens(text)
    plain = api.stream("completions.create", model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert all(chunk.usage is None for chunk in plain)


# --- embeddings ---------------------------------------------------------------------------------
def test_embeddings_float_and_base64_agree(api: Api) -> None:
    inputs = ["refund status", "reset my password, please", "hi"]
    floats = api.call(
        "embeddings.create", model="text-embedding-3-small", input=inputs, encoding_format="float"
    )
    encoded = api.call(
        "embeddings.create", model="text-embedding-3-small", input=inputs, encoding_format="base64"
    )
    by_default = api.call("embeddings.create", model="text-embedding-3-small", input=inputs)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == sum(tokens(text) for text in inputs)
    assert [item.index for item in floats.data] == [0, 1, 2]
    for plain, packed, decoded in zip(floats.data, encoded.data, by_default.data, strict=True):
        assert len(plain.embedding) == 1536
        assert array.array("f", base64.b64decode(packed.embedding)).tolist() == plain.embedding
        assert decoded.embedding == plain.embedding  # the SDK asks for base64 and decodes it itself
    assert sum(value * value for value in floats.data[0].embedding) == pytest.approx(1.0, rel=1e-4)


def test_embeddings_dimensions_and_token_inputs(api: Api) -> None:
    reply = api.call("embeddings.create", model="text-embedding-3-large", input=[[1, 2, 3], [4]], dimensions=64,
                     encoding_format="float")  # fmt: skip
    assert [len(item.embedding) for item in reply.data] == [64, 64]
    assert reply.usage.prompt_tokens == 4


# --- responses ----------------------------------------------------------------------------------
def test_responses_plain(api: Api) -> None:
    reply = api.call(
        "responses.create", model="gpt-4.1", input="Where is my refund?", instructions="Be brief."
    )
    assert reply.status == "completed" and reply.object == "response"
    assert reply.usage.input_tokens == chat_prompt_tokens("Be brief.", "Where is my refund?")
    assert reply.usage.output_tokens == tokens(reply.output_text)
    assert reply.usage.input_tokens_details.cached_tokens == 0
    assert reply.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_reasoning_and_message_items(api: Api) -> None:
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Hi!"}]}]
    reply = api.call("responses.create", model="gpt-5-mini", input=items, reasoning={"effort": "low"})
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    reasoning = reply.usage.output_tokens_details.reasoning_tokens
    assert reasoning > 0 and reply.usage.output_tokens == reasoning + tokens(reply.output_text)
    assert reply.usage.input_tokens == chat_prompt_tokens("Hi!")


def test_responses_incomplete_at_max_output_tokens(api: Api) -> None:
    reply = api.call("responses.create", model="gpt-4.1", input="hello", max_output_tokens=16)
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_output_tokens"
    assert reply.usage.output_tokens == 16


def test_responses_cached_tokens_on_repeated_instructions(api: Api) -> None:
    instructions = " ".join(f"policy {i}." for i in range(50))
    replies = [
        api.call("responses.create", model="gpt-4.1", input=q, instructions=instructions) for q in ("a", "b")
    ]
    assert replies[0].usage.input_tokens_details.cached_tokens == 0
    assert replies[1].usage.input_tokens_details.cached_tokens > 0


def test_responses_create_stream_follows_openais_event_sequence(api: Api) -> None:
    events = api.stream("responses.create", model="gpt-4.1", input="Where is my refund?")
    types = [event.type for event in events]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]  # fmt: skip
    assert set(types[4 : 4 + len(deltas)]) == {"response.output_text.delta"}
    assert types[4 + len(deltas) :] == ["response.output_text.done", "response.content_part.done",
                                        "response.output_item.done", "response.completed"]  # fmt: skip
    assert [event.sequence_number for event in events] == list(range(len(events)))
    usage = events[-1].response.usage
    assert usage.input_tokens == chat_prompt_tokens("Where is my refund?")
    assert usage.output_tokens == tokens("".join(deltas))
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_helper_gives_the_final_response(api: Api) -> None:
    events, final = api.responses_stream(model="o4-mini", input="Reset my password")
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert final.output_text == text
    assert final.usage.output_tokens == final.usage.output_tokens_details.reasoning_tokens + tokens(text)


# --- models -------------------------------------------------------------------------------------
def test_models_list_and_retrieve(api: Api) -> None:
    ids = [model.id for model in api.call("models.list").data]
    assert set(CASE_MODELS) | {"gpt-4o-mini", "o4-mini", "text-embedding-3-small"} <= set(ids)
    assert api.call("models.retrieve", "gpt-4.1").owned_by == "openai"
    with pytest.raises(openai.NotFoundError):
        api.call("models.retrieve", "gpt-9")


def test_unknown_model_is_a_404_like_openai(api: Api) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        api.call("chat.completions.create", model="gpt-9", messages=USER)
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        api.call("embeddings.create", model="gpt-4.1", input="x")


def test_bad_request_is_a_400(api: Api) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        api.call("chat.completions.create", model="gpt-4.1", messages=[])
    assert caught.value.param == "messages"


def test_extra_models_are_served(make_sim: Any, make_api: Any) -> None:
    api = make_api(make_sim(extra_models=("openrouter/auto",)))
    assert (
        api.call("chat.completions.create", model="openrouter/auto", messages=USER).model == "openrouter/auto"
    )


# --- wire level (no SDK) ------------------------------------------------------------------------
def test_chat_stream_wire_format(sim: Simulator) -> None:
    body = {"model": "gpt-4.1", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, raw = post(sim.base_url + "/chat/completions", body)
    events = raw.decode().split("\n\n")
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all("usage" in chunk for chunk in chunks)  # null on all but the last, as OpenAI sends
    assert [chunk["usage"] is None for chunk in chunks].count(False) == 1
    assert headers["x-request-id"].startswith("req_") and "x-ratelimit-remaining-requests" in headers


def test_latency_is_realistic_when_enabled(make_sim: Any) -> None:
    sim = make_sim(latency_scale=1.0, ttft_min=0.05, ttft_max=0.05, chunk_delay=0.002, min_output_tokens=20,
                   max_output_tokens=20)  # fmt: skip
    client = openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    with client:
        start = time.perf_counter()
        stream = client.chat.completions.create(model="gpt-4.1", messages=USER, stream=True)
        with stream:
            next(iter(stream))
            first = time.perf_counter() - start
            list(stream)
        total = time.perf_counter() - start
    assert 0.05 <= first < 0.5
    assert total >= 0.05 + 19 * 0.002
