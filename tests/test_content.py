"""Opt-in content capture: input and output messages in the GenAI conventions' JSON shape, the same for
plain calls and streams, validated against the conventions' own schemas (tests/data/semconv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from otel_llm import semconv as sc
from tests.conftest import Api, only_span

SCHEMAS = Path(__file__).parent / "data" / "semconv"
TOOL_TURN = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                                 {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
]
CASES = {
    "chat": ("chat.completions.create", {"model": "gpt-4.1", "messages": TOOL_TURN}),
    "completion": ("completions.create", {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test"}),
    "responses": ("responses.create", {"model": "gpt-4.1", "input": "Say this is a test", "instructions": "Be terse."}),
}


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


INPUT, OUTPUT, SYSTEM = (_validator(f"gen-ai-{n}.json") for n in ("input-messages", "output-messages", "system-instructions"))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("case", list(CASES))
def test_content_is_recorded_in_the_conventions_message_shape(
    instrument: Any, api: Api, spans: Any, case: str, stream: bool,
) -> None:
    instrument(capture_content=True)
    path, kwargs = CASES[case]
    result = api.call(path, **kwargs, stream=stream)
    if stream:
        api.consume(result)
    attrs = only_span(spans).attributes

    messages_in = json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])
    INPUT.validate(messages_in)
    messages_out = json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES])
    OUTPUT.validate(messages_out)
    first = messages_out[0]
    assert first["role"] == "assistant" and first["finish_reason"] in ("stop", "length")  # as the fixtures end
    assert first["parts"][0]["type"] == "text" and first["parts"][0]["content"]
    if case == "chat":
        assert [m["role"] for m in messages_in] == ["system", "user", "assistant", "tool"]
        assert messages_in[2]["parts"] == [{"type": "tool_call", "id": "call_1", "name": "weather",
                                             "arguments": "{\"city\": \"Paris\"}"}]
        assert messages_in[3]["parts"] == [{"type": "tool_call_response", "id": "call_1", "response": "18C, sunny"}]
    if case == "responses":
        SYSTEM.validate(json.loads(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]))


def test_plain_and_streamed_output_read_the_same(instrument: Any, api: Api, spans: Any) -> None:
    instrument(capture_content=True)
    api.call("completions.create", model="gpt-3.5-turbo-instruct", prompt="x")
    api.consume(api.call("completions.create", model="gpt-3.5-turbo-instruct", prompt="x", stream=True))
    plain, streamed = (json.loads(s.attributes[sc.GEN_AI_OUTPUT_MESSAGES]) for s in spans.get_finished_spans())
    assert [set(m) for m in plain] == [set(m) for m in streamed] == [{"role", "parts", "finish_reason"}]
    assert [p["type"] for p in plain[0]["parts"]] == [p["type"] for p in streamed[0]["parts"]] == ["text"]


def test_messages_given_as_generators_reach_the_api_untouched(instrument: Any, api: Api, fake: Any, spans: Any) -> None:
    """The SDK takes any iterable of messages, of content parts and of tool calls; capture reads only lists and
    tuples, so a generator stays the SDK's to consume, once."""
    instrument(capture_content=True)
    turn = [TOOL_TURN[0], {**TOOL_TURN[1], "content": (part for part in TOOL_TURN[1]["content"])},
            {**TOOL_TURN[2], "tool_calls": (call for call in TOOL_TURN[2]["tool_calls"])}, TOOL_TURN[3]]
    api.call("chat.completions.create", model="gpt-4.1", messages=turn)
    api.call("chat.completions.create", model="gpt-4.1", messages=(m for m in TOOL_TURN))
    first, second = fake.bodies[-2:]
    assert first["messages"] == second["messages"] == TOOL_TURN
    assert sc.GEN_AI_INPUT_MESSAGES not in spans.get_finished_spans()[-1].attributes  # not read, not guessed
