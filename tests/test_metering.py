"""No call goes unmetered in silence: the usage chunk is asked for wherever it is accepted, never where
the app reads raw bytes, and a call that ends with no usage is counted, marked and warned about."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from otel_llm import semconv as sc
from tests.conftest import Api, FakeAPI, Reply, fixture_json, fixture_text, only_span, points, total

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
CHAT = {"model": "gpt-4.1", "messages": MESSAGES}


def _unmetered(reader: Any) -> list[dict[str, Any]]:
    return [{**dict(p.attributes), "value": p.value} for p in points(reader, sc.CALLS_UNMETERED)]


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "otel_llm" and r.levelno == logging.WARNING and word in r.getMessage()]


def test_a_stream_without_usage_is_counted_marked_and_warned_once(
    instrument: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    instrument(include_stream_usage="never")
    for _ in range(3):
        chunks = gateway_api.consume(gateway_api.call("chat.completions.create", **CHAT, stream=True))
        assert len(chunks) == 52
    assert "stream_options" not in fake.bodies[-1]

    assert _unmetered(reader) == [{
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai_compatible",
        "gen_ai.request.model": "gpt-4.1", "server.address": "gateway.example.com", "value": 3,
    }]
    span = spans.get_finished_spans()[-1]
    assert span.attributes[sc.UNMETERED] is True and sc.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    warned = _warnings(caplog, "no usage")
    assert len(warned) == 1 and "OTEL_LLM_INCLUDE_STREAM_USAGE" in warned[0] and "gateway.example.com" in warned[0]
    assert total(reader, sc.CALLS) == 3  # still counted as calls


def test_a_gateway_that_strips_usage_from_a_plain_call_is_unmetered(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    body = fixture_json("chat_completion.json")
    del body["usage"]
    fake.reply(Reply(body=body))
    gateway_api.call("chat.completions.create", **CHAT)
    assert only_span(spans).attributes[sc.UNMETERED] is True
    assert [p["value"] for p in _unmetered(reader)] == [1]


def test_metered_calls_and_operations_without_usage_are_not_unmetered(
    instrumented: Any, api: Api, spans: Any, reader: Any,
) -> None:
    api.call("chat.completions.create", **CHAT)
    api.consume(api.call("chat.completions.create", **CHAT, stream=True))
    api.call("embeddings.create", model="text-embedding-3-small", input="x")
    # Creating a batch is not billed itself (its requests are, later, on the bill): no usage to miss.
    api.call("batches.create", input_file_id="f", endpoint="/v1/chat/completions", completion_window="24h")
    assert _unmetered(reader) == []
    assert all(sc.UNMETERED not in s.attributes for s in spans.get_finished_spans())


_WAV = ("a.wav", b"RIFF....WAVE", "audio/wav")
# Calls billed per image, per character or per minute, whose responses carry no token usage: the
# bill has them, our figures cannot, so they are counted as unmetered, never a silent $0.
BILLED_WITHOUT_TOKENS = {
    "dall-e-3 image": ("images.generate", {"model": "dall-e-3", "prompt": "a cat"},
                       Reply(body={"created": 1, "data": [{"url": "https://example.invalid/a.png"}]}), "image_generation"),
    "tts-1 speech": ("audio.speech.create", {"model": "tts-1", "voice": "alloy", "input": "hello"},
                     Reply(body=b"RIFF....WAVE"), "audio_speech"),
    "whisper-1 transcription, usage in seconds": (
        "audio.transcriptions.create", {"model": "whisper-1", "file": _WAV},
        Reply(body={"text": "hi", "usage": {"type": "duration", "seconds": 3}}), "audio_transcription"),
    "whisper-1 translation": ("audio.translations.create", {"model": "whisper-1", "file": _WAV},
                              Reply(body={"text": "hi"}), "audio_translation"),
}


@pytest.mark.parametrize("case", sorted(BILLED_WITHOUT_TOKENS))
def test_a_call_billed_per_image_character_or_minute_is_unmetered_never_a_silent_zero(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture, case: str,
) -> None:
    path, kwargs, reply, operation = BILLED_WITHOUT_TOKENS[case]
    fake.reply(reply, reply)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "deprecated", DeprecationWarning)  # openai 3.x deprecates translations
        api.call(path, **kwargs)
        api.call(path, **kwargs)
    assert [(p[sc.GEN_AI_OPERATION_NAME], p["value"]) for p in _unmetered(reader)] == [(operation, 2)]
    span = spans.get_finished_spans()[-1]
    assert span.attributes[sc.UNMETERED] is True
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes and sc.COST_USD not in span.attributes  # not "0 tokens, $0"
    assert total(reader, sc.CALLS_UNPRICED) == 0 and total(reader, sc.TOKENS) == 0
    warned = _warnings(caplog, "cost is not measured")
    assert len(warned) == 1 and kwargs["model"] in warned[0] and "per image" in warned[0]
    assert "OTEL_LLM_INCLUDE_STREAM_USAGE" not in warned[0]  # a stream's remedy, not this call's


def test_a_transcription_billed_by_tokens_prices_its_audio_input_at_the_audio_rate(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    # The transcription API names its details `input_token_details` (the others: `input_tokens_details`).
    fake.reply(Reply(body={"text": "hi", "usage": {
        "type": "tokens", "input_tokens": 14, "output_tokens": 45, "total_tokens": 59,
        "input_token_details": {"text_tokens": 2, "audio_tokens": 12}}}))
    api.call("audio.transcriptions.create", model="gpt-4o-transcribe", file=_WAV)
    attributes = only_span(spans).attributes
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 14 and attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 45
    # gpt-4o-transcribe: $2.50 per million text input tokens, $6 per million audio input, $10 per million output.
    expected = 2 * 2.5e-6 + 12 * 6e-6 + 45 * 10e-6
    assert attributes[sc.COST_USD] == pytest.approx(expected)
    assert total(reader, sc.COST) == pytest.approx(expected)


@pytest.fixture
def client_at(fake: FakeAPI) -> Iterator[Any]:
    made: list[Api] = []

    def make(base_url: str, **azure: Any) -> Api:
        made.append(Api("sync", fake, base_url))
        if azure:
            import openai

            from tests.conftest import API_KEY, httpx
            http = openai.DefaultHttpxClient(transport=httpx.MockTransport(fake.handler))
            made[-1].client = openai.AzureOpenAI(api_key=API_KEY, azure_endpoint=base_url, http_client=http,
                                                 max_retries=0, **azure)
        return made[-1]

    yield make
    for api in made:
        api.close()


@pytest.mark.parametrize(("base_url", "asked"), [
    ("https://api.openai.com/v1", True),
    ("https://api.deepseek.com", True),
    ("https://api.groq.com/openai/v1", True),
    ("https://api.together.xyz/v1", True),
    ("https://api.fireworks.ai/inference/v1", True),
    ("https://openrouter.ai/api/v1", False),  # sends it unasked: see the test below
    ("http://127.0.0.1:4000/v1", True),  # a LiteLLM proxy, vLLM, Ollama or the simulator: openai_compatible
    ("https://gateway.example.com/v1", True),
    ("https://api.mistral.ai/v1", False),  # not confirmed to accept it: not asked, counted if unmetered
])
def test_auto_asks_every_provider_known_to_accept_the_usage_chunk(
    instrument: Any, client_at: Any, fake: FakeAPI, base_url: str, asked: bool,
) -> None:
    instrument()
    api = client_at(base_url)
    chunks = api.consume(api.call("chat.completions.create", **CHAT, stream=True))
    assert ("stream_options" in fake.bodies[-1]) is asked
    assert len(chunks) == 52 and all(c.choices for c in chunks)  # the app never sees the usage chunk


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("setting", ["auto", "always"])
def test_a_server_that_always_sends_the_usage_chunk_is_not_asked_so_the_app_keeps_it(
    instrument: Any, fake: FakeAPI, spans: Any, mode: str, setting: str,
) -> None:
    # OpenRouter sends the usage chunk whether asked or not (its SDK: "includeUsage ... has no effect. Full
    # usage details are always included"). Asking there would make the proxy hide a chunk the app gets
    # without us; not asking loses nothing: the usage still arrives and is read.
    always = Reply(sse=fixture_text("chat_stream_usage.sse"))
    fake.reply(always, always)
    api = Api(mode, fake, "https://openrouter.ai/api/v1")
    try:
        without_us = [c.model_dump() for c in api.consume(api.call("chat.completions.create", **CHAT, stream=True))]
        instrument(include_stream_usage=setting)
        with_us = [c.model_dump() for c in api.consume(api.call("chat.completions.create", **CHAT, stream=True))]
    finally:
        api.close()
    assert "stream_options" not in fake.bodies[-1]
    assert with_us == without_us and not with_us[-1]["choices"]  # the usage chunk, as the app gets it anyway
    attributes = only_span(spans).attributes
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == with_us[-1]["usage"]["prompt_tokens"]
    assert attributes[sc.STREAM_CHUNKS] == len(with_us)
    assert sc.COST_USD in attributes


@pytest.mark.parametrize(("api_version", "asked"), [("2024-10-21", True), ("2024-09-01-preview", True),
                                                    ("2024-06-01", False), ("2023-05-15", False)])
def test_auto_asks_azure_only_from_the_api_version_that_accepts_it(
    instrument: Any, client_at: Any, fake: FakeAPI, api_version: str, asked: bool,
) -> None:
    instrument()
    api = client_at("https://my-resource.openai.azure.com", api_version=api_version)
    api.consume(api.client.chat.completions.create(**CHAT, stream=True))
    assert ("stream_options" in fake.bodies[-1]) is asked


# --- raw access paths: what the app reads is never changed ---------------------------------------
def _raw_lines(api: Api, how: str) -> list[str]:
    """What an app reading the raw response sees, line by line."""
    if how == "streaming_response":
        manager = api.client.chat.completions.with_streaming_response.create(**CHAT, stream=True)
        if api.is_async:
            async def read() -> list[str]:
                async with manager as response:
                    return [line async for line in response.iter_lines()]
            return list(api.run(read()))
        with manager as response:
            return list(response.iter_lines())
    raw = api.call("chat.completions.with_raw_response.create", **CHAT, stream=True)
    return list(raw.text.splitlines())


@pytest.mark.parametrize("how", ["streaming_response", "raw_response"])
def test_raw_readers_see_exactly_what_they_would_without_us(
    instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, how: str,
) -> None:
    bare = Api(api.mode, fake, "https://api.openai.com/v1")  # the SDK caches `with_*_response` per client
    expected = _raw_lines(bare, how)
    bare.close()
    instrument()  # auto on OpenAI's own host: the usage chunk would be asked for a parsed stream
    got = _raw_lines(api, how)

    assert got == expected
    assert "stream_options" not in fake.bodies[-1]
    assert not any('"usage":{' in line.replace(" ", "") for line in got)
    # A raw stream nobody parsed ends when its proxy is dropped, at the next collection (finalisers take no lock).
    gc.collect()  # openai 1.40's async raw response sits in a reference cycle: dropped at the next GC pass
    unmetered = [p["value"] for p in _unmetered(reader)]
    assert only_span(spans).attributes.get(sc.UNMETERED) is True
    assert unmetered == [1]  # so the call is counted as unmetered


# --- chunk count --------------------------------------------------------------------------------
def test_stream_chunk_count_is_what_the_app_saw(instrumented: Any, api: Api, spans: Any) -> None:
    chunks = api.consume(api.call("chat.completions.create", **CHAT, stream=True))
    assert only_span(spans).attributes[sc.STREAM_CHUNKS] == len(chunks) == 52


def test_a_background_response_is_unmetered_and_its_warning_says_why_not_how_to_stream(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """responses.create(background=True) returns at once, queued, before any usage exists: counted unmetered
    (never $0 in silence), and the warning names the cause, not the stream setting."""
    body = fixture_json("response.json")
    body.update(status="queued", usage=None, output=[])
    fake.reply(Reply(body=body))
    response = api.call("responses.create", model="gpt-4.1", input="Write a long report", background=True)
    assert response.status == "queued"
    assert only_span(spans).attributes[sc.UNMETERED] is True
    assert [p["value"] for p in _unmetered(reader)] == [1]
    warned = _warnings(caplog, "no")
    assert len(warned) == 1 and "background" in warned[0] and "queued" in warned[0]
    assert "OTEL_LLM_INCLUDE_STREAM_USAGE" not in warned[0]
