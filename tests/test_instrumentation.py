"""One span and the GenAI metrics for every call, sync and async, plain and streamed."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pydantic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_llm import semconv as sc
from otel_llm.attribution import fingerprint
from tests.conftest import API_KEY, Api, FakeAPI, Reply, chat_module, collect, finished, only_span, points, total

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
KEY_ID = fingerprint(API_KEY)


def test_chat_create_span_has_the_conventions_attributes(instrumented: Any, api: Api, spans: Any) -> None:
    result = api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, temperature=0.2, max_tokens=500, seed=7)

    assert type(result) is openai.types.chat.ChatCompletion
    span = only_span(spans)
    assert span.name == "chat gpt-4.1"
    assert span.kind is SpanKind.CLIENT
    cost = (176 * 2.0 + 1024 * 0.5 + 300 * 8.0) / 1e6
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 500,
        "gen_ai.request.seed": 7,
        "server.address": "api.openai.com",
        "server.port": 443,
        "otel_llm.api_key.fingerprint": KEY_ID,
        "gen_ai.response.id": "chatcmpl-abc123",
        "gen_ai.response.model": "gpt-4.1-2025-04-14",
        "gen_ai.response.finish_reasons": ("stop",),
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_44709d6fcb",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.reasoning.output_tokens": 100,
        "otel_llm.cache.hit": True,
        "otel_llm.cost.usd": pytest.approx(cost),
        "otel_llm.cache.savings_usd": pytest.approx(1024 * 1.5 / 1e6),
        "otel_llm.price.source": "genai-prices:openai/gpt-4.1",
    }


def test_chat_create_records_genai_metrics_with_exemplar_context(instrumented: Any, api: Api, spans: Any, reader: Any) -> None:
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)

    span = only_span(spans)
    data = collect(reader)
    tokens = {dict(p.attributes)["gen_ai.token.type"]: p for p in data[sc.GEN_AI_CLIENT_TOKEN_USAGE]}
    assert tokens["input"].sum == 1200 and tokens["output"].sum == 300
    assert dict(tokens["input"].attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1-2025-04-14", "server.address": "api.openai.com", "server.port": 443,
        "gen_ai.token.type": "input",
    }
    (duration,) = data[sc.GEN_AI_CLIENT_OPERATION_DURATION]
    assert duration.count == 1
    assert list(duration.explicit_bounds) == list(sc.DURATION_BUCKETS)
    assert list(tokens["input"].explicit_bounds) == list(sc.TOKEN_BUCKETS)
    # measured in the span's context: the exemplar points at this trace
    assert [e.trace_id for e in duration.exemplars] == [span.context.trace_id]
    assert {e.span_id for p in tokens.values() for e in p.exemplars} == {span.context.span_id}
    assert total(reader, sc.CALLS) == 1


def test_sdk_exceptions_reach_the_app_unchanged_and_401_differs_from_429(instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    fake.reply(Reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}))
    fake.reply(Reply(429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}))

    with pytest.raises(openai.AuthenticationError) as auth:
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)

    assert auth.value.status_code == 401
    first, second = finished(spans)
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes["error.type"], first.attributes["http.response.status_code"]) == ("AuthenticationError", 401)
    assert (second.attributes["error.type"], second.attributes["http.response.status_code"]) == ("RateLimitError", 429)
    assert total(reader, sc.CALLS, error__type="AuthenticationError") == 1
    assert total(reader, sc.CALLS, error__type="RateLimitError") == 1
    assert {dict(p.attributes).get("error.type") for p in points(reader, sc.GEN_AI_CLIENT_OPERATION_DURATION)} == {
        "AuthenticationError", "RateLimitError"}


def _uninstrumented_chunks(api: Api, **kwargs: Any) -> list[Any]:
    return api.consume(api.call("chat.completions.create", **kwargs))


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_yields_exactly_the_sdk_chunks_and_records_usage(instrument: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, include_usage: bool) -> None:
    kwargs: dict[str, Any] = {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}
    if include_usage:
        kwargs["stream_options"] = {"include_usage": True}
    expected = _uninstrumented_chunks(api, **kwargs)
    instrument()

    stream = api.call("chat.completions.create", **kwargs)
    chunks = api.consume(stream)

    assert isinstance(stream, openai.AsyncStream if api.is_async else openai.Stream)
    assert [c.model_dump() for c in chunks] == [c.model_dump() for c in expected]
    # we asked for usage on the app's behalf only when it had not asked itself
    assert fake.bodies[-1]["stream_options"] == {"include_usage": True}
    span = only_span(spans)
    assert span.attributes["gen_ai.usage.input_tokens"] == 40
    assert span.attributes["gen_ai.usage.output_tokens"] == 51
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-stream1"
    assert 0 < span.attributes["gen_ai.response.time_to_first_chunk"] <= (span.end_time - span.start_time) / 1e9
    assert [p.count for p in points(reader, sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)] == [1]


def test_stream_usage_is_never_made_up_where_not_asked_for(instrument: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    instrument(include_stream_usage="never")
    chunks = gateway_api.consume(gateway_api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True))

    assert "stream_options" not in fake.bodies[-1]
    assert len(chunks) == 52
    span = only_span(spans)
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert "otel_llm.cost.usd" not in span.attributes
    assert points(reader, sc.GEN_AI_CLIENT_TOKEN_USAGE) == []


def test_stream_usage_can_be_asked_of_any_gateway(instrument: Any, gateway_api: Api, fake: FakeAPI, spans: Any) -> None:
    instrument(include_stream_usage="gateway.example.com")
    chunks = gateway_api.consume(gateway_api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True))

    assert fake.bodies[-1]["stream_options"] == {"include_usage": True}
    assert len(chunks) == 52 and all(c.choices for c in chunks)
    assert only_span(spans).attributes["gen_ai.usage.output_tokens"] == 51


def _stream(api: Api) -> Any:
    return api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True,
                    stream_options={"include_usage": True})


def test_stream_span_ends_once_on_break_then_close(instrumented: Any, api: Api, spans: Any) -> None:
    stream = _stream(api)
    assert len(api.consume(stream, limit=3)) == 3
    assert finished(spans) == []
    api.run(stream.close())
    api.run(stream.close())

    span = only_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.usage.input_tokens" not in span.attributes  # the usage chunk never arrived
    assert span.attributes["otel_llm.stream.chunks"] == 3


def test_stream_span_ends_on_context_manager_exit(instrumented: Any, api: Api, spans: Any) -> None:
    async def use_async(stream: Any) -> None:
        async with stream as s:
            assert s is stream
            await s.__anext__()

    stream = _stream(api)
    if api.is_async:
        api.run(use_async(stream))
    else:
        with stream as s:
            assert s is stream
            next(s)
    assert len(finished(spans)) == 1


def test_stream_span_ends_with_error_when_transport_fails_mid_stream(instrumented: Any, api: Api, fake: FakeAPI, spans: Any) -> None:
    class Boom(Exception):
        pass

    head = "".join(fake_line + "\n\n" for fake_line in _sse_lines()[:3])

    def broken_body() -> Any:
        yield head.encode()
        raise Boom("connection reset")

    async def broken_async_body() -> Any:
        yield head.encode()
        raise Boom("connection reset")

    fake.reply(Reply(sse_stream=broken_async_body() if api.is_async else broken_body()))
    stream = _stream(api)
    with pytest.raises(Boom):
        api.consume(stream)

    span = only_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "Boom"
    assert span.attributes["otel_llm.stream.chunks"] == 3


def _sse_lines() -> list[str]:
    from tests.conftest import fixture_text

    return [line for line in fixture_text("chat_stream_usage.sse").split("\n\n") if line]


def test_stream_never_iterated_and_dropped_still_ends(instrumented: Any, api: Api, spans: Any, reader: Any) -> None:
    stream = _stream(api)
    assert finished(spans) == []
    del stream
    gc.collect()
    reader.get_metrics_data()  # a finaliser takes no lock: the next collection (or call) ends the span
    assert len(finished(spans)) == 1


def test_a_stream_read_to_its_end_leaves_its_finaliser_nothing_to_do(instrumented: Any, api: Api, spans: Any) -> None:
    """The end already recorded, dropping the stream hands nothing to the next call or collection."""
    from otel_llm import ledger

    stream = _stream(api)
    api.consume(stream)
    assert len(finished(spans)) == 1
    del stream
    gc.collect()
    assert not ledger._deferred


def _loop_over_a_stream_not_kept(api: Api, spans: Any, stop_after: int | None) -> list[Any]:
    """`for chunk in client...create(stream=True)`: the loop holds the only reference to the stream.
    Checks that the span is still open while chunks arrive."""
    seen: list[Any] = []
    open_while_iterating: list[bool] = []

    def take(chunk: Any) -> bool:
        seen.append(chunk)
        open_while_iterating.append(finished(spans) == [])
        return stop_after is not None and len(seen) >= stop_after

    async def use_async() -> None:
        async for chunk in await api.client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                                                    stream_options={"include_usage": True}):
            if take(chunk):
                break

    if api.is_async:
        api.run(use_async())
    else:
        for chunk in api.client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True,
                                                        stream_options={"include_usage": True}):
            if take(chunk):
                break
    assert all(open_while_iterating)
    return seen


def test_stream_not_kept_by_the_app_ends_once_after_its_last_chunk(instrumented: Any, api: Api, spans: Any) -> None:
    seen = _loop_over_a_stream_not_kept(api, spans, None)
    span = only_span(spans)
    assert span.attributes["otel_llm.stream.chunks"] == len(seen)
    assert span.attributes["gen_ai.usage.output_tokens"] > 0


def test_stream_not_kept_left_early_ends_with_what_arrived(instrumented: Any, api: Api, spans: Any, reader: Any) -> None:
    _loop_over_a_stream_not_kept(api, spans, 2)
    gc.collect()
    if api.is_async:  # an abandoned async generator is finalised by the event loop
        api.run(asyncio.sleep(0))
        gc.collect()
    reader.get_metrics_data()  # a finaliser takes no lock: the next collection (or call) ends the span
    span = only_span(spans)
    assert span.attributes["otel_llm.stream.chunks"] == 2
    assert span.status.status_code is StatusCode.UNSET


def test_stream_loop_left_then_resumed_counts_every_chunk_once(instrumented: Any, api: Api, spans: Any) -> None:
    whole = api.consume(_stream(api))
    stream = _stream(api)
    first = api.consume(stream, limit=2)
    rest = api.consume(stream)
    assert [c.model_dump() for c in first + rest] == [c.model_dump() for c in whole]
    spans_now = finished(spans)
    assert len(spans_now) == 2
    assert [s.attributes["otel_llm.stream.chunks"] for s in spans_now] == [len(whole), len(whole)]


def test_stream_exception_raised_by_the_app_inside_the_loop_ends_the_span(instrumented: Any, api: Api, spans: Any) -> None:
    if api.is_async:
        pytest.skip("the sync case covers the app's own exception; async is the same proxy path")
    stream = _stream(api)
    with pytest.raises(KeyError), stream:
        for _ in stream:
            raise KeyError("app bug")
    span = only_span(spans)
    assert span.attributes["error.type"] == "KeyError"


class City(pydantic.BaseModel):
    city: str
    population: int


def test_chat_parse(instrumented: Any, api: Api, spans: Any) -> None:
    result = api.call("chat.completions.parse", model="gpt-4.1", messages=MESSAGES, response_format=City)

    assert result.choices[0].message.parsed == City(city="Paris", population=2100000)
    span = only_span(spans)
    assert span.name == "chat gpt-4.1"
    assert span.attributes["gen_ai.output.type"] == "json"
    assert span.attributes["gen_ai.usage.input_tokens"] == 50


def test_chat_stream_helper_and_its_context_manager(instrumented: Any, api: Api, spans: Any) -> None:
    manager = api.needs("chat.completions.stream")(model="gpt-4.1", messages=MESSAGES)

    async def run_async() -> str:
        async with manager as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_completion()
        return final.choices[0].message.content

    if api.is_async:
        text = api.run(run_async())
    else:
        with manager as stream:
            for _ in stream:
                pass
            text = stream.get_final_completion().choices[0].message.content
    assert text.startswith("w0 w1")
    span = only_span(spans)
    assert span.attributes["gen_ai.usage.output_tokens"] == 51


def test_chat_stream_helper_left_early_ends_the_span_at_exit(instrumented: Any, api: Api, spans: Any) -> None:
    manager = api.needs("chat.completions.stream")(model="gpt-4.1", messages=MESSAGES)

    async def run_async() -> None:
        async with manager as stream:
            async for _ in stream:
                break

    if api.is_async:
        api.run(run_async())
    else:
        with manager as stream:
            for _ in stream:
                break
    assert len(finished(spans)) == 1


def test_legacy_completions_plain_and_stream(instrumented: Any, api: Api, spans: Any) -> None:
    api.call("completions.create", model="gpt-3.5-turbo-instruct", prompt="This is", max_tokens=7)
    chunks = api.consume(api.call("completions.create", model="gpt-3.5-turbo-instruct", prompt="This is", stream=True))

    plain, streamed = finished(spans)
    assert plain.name == "text_completion gpt-3.5-turbo-instruct"
    assert plain.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert (plain.attributes["gen_ai.usage.input_tokens"], plain.attributes["gen_ai.usage.output_tokens"]) == (5, 7)
    assert len(chunks) == 2  # the usage chunk we asked for is not shown to the app
    assert (streamed.attributes["gen_ai.usage.input_tokens"], streamed.attributes["gen_ai.usage.output_tokens"]) == (5, 2)


def test_embeddings(instrumented: Any, api: Api, spans: Any, reader: Any, semconv_mode: str) -> None:
    result = api.call("embeddings.create", model="text-embedding-3-small", input=["a", "b"], encoding_format="float", dimensions=3)

    assert len(result.data) == 2
    span = only_span(spans)
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.request.encoding_formats"] == ("float",)
    assert span.attributes["gen_ai.embeddings.dimension.count"] == 3
    assert span.attributes["gen_ai.usage.input_tokens"] == 8
    # The pinned latest conventions have no token metric for embeddings (only inference has one).
    standard = [] if semconv_mode == "latest" else ["input"]
    assert [dict(p.attributes)["gen_ai.token.type"] for p in points(reader, sc.GEN_AI_CLIENT_TOKEN_USAGE)] == standard
    assert total(reader, sc.TOKENS, **{"gen_ai.token.type": "input"}) == 8  # ours, in every mode


def test_a_compacted_conversation_is_recorded_and_priced(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    """`client.responses.compact` (openai 2.11 on) runs a model over the conversation and bills the pass's
    tokens: it was not wrapped, so its spend was in no figure."""
    compacted = api.call("responses.compact", model="gpt-5.1", input=[{"role": "user", "content": "Plan the migration"}])
    assert [item.type for item in compacted.output] == ["compaction"]  # the SDK's own object, as sent
    span = only_span(spans)
    assert span.name == "chat gpt-5.1" and span.attributes[sc.GEN_AI_RESPONSE_ID] == "resp_cmp_1"
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 5000 and span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 300
    # gpt-5.1 at OpenAI's list: $1.25 per million input, $0.125 cached, $10 output.
    expected = 1000 * 1.25e-6 + 4000 * 0.125e-6 + 300 * 10e-6
    assert span.attributes[sc.COST_USD] == pytest.approx(expected)
    assert total(reader, sc.COST) == pytest.approx(expected) and total(reader, sc.CALLS_UNMETERED) == 0


DECISION = {"model": "gpt-6-luna", "input": "Refund my order #123, please",
            "questions": [{"type": "predicate", "name": "is_spam", "instructions": "Is this spam?"}]}


def test_decisions_are_recorded_and_priced_like_any_model_call(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    """`client.decisions.create` (openai 3.x) runs a model on its input and bills its tokens: it was not
    wrapped, so its spend was in no figure."""
    decision = api.call("decisions.create", **DECISION)
    assert decision.answers[0].probability == 0.93  # the SDK's own object, as sent
    assert fake.bodies[-1]["questions"] == DECISION["questions"]
    span = only_span(spans)
    assert span.name == "chat gpt-6-luna" and span.kind == SpanKind.CLIENT
    attributes = span.attributes
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1200 and attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    assert attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    # gpt-6-luna at genai-prices' list: $0.10 per million input, $0.01 cached, $0.50 output.
    expected = 200 * 0.10e-6 + 1000 * 0.01e-6 + 8 * 0.50e-6
    assert attributes[sc.COST_USD] == pytest.approx(expected)
    assert total(reader, sc.COST) == pytest.approx(expected)
    assert total(reader, sc.CALLS) == 1 and total(reader, sc.CALLS_UNMETERED) == 0


def test_responses_create_plain_and_stream(instrumented: Any, api: Api, spans: Any) -> None:
    result = api.call("responses.create", model="gpt-4.1", input="Where?")
    events = api.consume(api.call("responses.create", model="gpt-4.1", input="Where?", stream=True))

    assert result.output_text.startswith('{"city"')
    assert events[-1].type == "response.completed"
    for span in finished(spans):
        assert span.name == "chat gpt-4.1"
        assert span.attributes["gen_ai.response.id"] == "resp_123"
        assert span.attributes["gen_ai.usage.input_tokens"] == 2000
        assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 1500
        assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 150
        assert span.attributes["gen_ai.response.finish_reasons"] == ("completed",)
    assert len(finished(spans)) == 2


def test_responses_parse_and_stream_helper(instrumented: Any, api: Api, spans: Any) -> None:
    parsed = api.call("responses.parse", model="gpt-4.1", input="Where?", text_format=City)
    assert parsed.output_parsed == City(city="Paris", population=2100000)

    manager = api.needs("responses.stream")(model="gpt-4.1", input="Where?")

    async def run_async() -> Any:
        async with manager as stream:
            async for _ in stream:
                pass
            return await stream.get_final_response()

    if api.is_async:
        final = api.run(run_async())
    else:
        with manager as stream:
            for _ in stream:
                pass
            final = stream.get_final_response()
    assert final.id == "resp_123"
    assert [s.attributes["gen_ai.usage.output_tokens"] for s in finished(spans)] == [400, 400]


def test_with_raw_response_keeps_headers_and_is_traced_with_tokens(instrumented: Any, api: Api, spans: Any) -> None:
    raw = api.call("chat.completions.with_raw_response.create", model="gpt-4.1", messages=MESSAGES)

    assert raw.headers["x-request-id"] == "req_1"
    parsed = raw.parse()
    assert type(parsed) is openai.types.chat.ChatCompletion
    assert raw.parse() is parsed
    assert only_span(spans).attributes["gen_ai.usage.input_tokens"] == 1200


def test_with_raw_response_stream(instrumented: Any, api: Api, spans: Any) -> None:
    raw = api.call("chat.completions.with_raw_response.create", model="gpt-4.1", messages=MESSAGES, stream=True,
                   stream_options={"include_usage": True})
    chunks = api.consume(raw.parse())
    assert len(chunks) == 53
    assert only_span(spans).attributes["gen_ai.usage.output_tokens"] == 51


def test_with_streaming_response(instrumented: Any, api: Api, spans: Any) -> None:
    manager = api.client.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MESSAGES)

    async def run_async() -> Any:
        async with manager as response:
            assert response.headers["x-request-id"] == "req_1"
            return await response.parse()

    if api.is_async:
        parsed = api.run(run_async())
    else:
        with manager as response:
            assert response.headers["x-request-id"] == "req_1"
            parsed = response.parse()
    assert type(parsed) is openai.types.chat.ChatCompletion
    assert only_span(spans).attributes["gen_ai.usage.input_tokens"] == 1200


def test_with_streaming_response_read_without_parse_still_ends(instrumented: Any, api: Api, spans: Any) -> None:
    if api.is_async:
        pytest.skip("same path as sync")
    with api.client.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MESSAGES) as response:
        assert b"chatcmpl-abc123" in b"".join(response.iter_bytes())
    assert len(finished(spans)) == 1


def test_images_audio_and_batches_get_a_span(instrumented: Any, api: Api, spans: Any) -> None:
    api.call("images.generate", model="gpt-image-1", prompt="a cat")
    api.call("audio.speech.create", model="tts-1", voice="alloy", input="hi")
    api.call("batches.create", completion_window="24h", endpoint="/v1/chat/completions", input_file_id="f")

    names = [s.name for s in finished(spans)]
    assert names == ["image_generation gpt-image-1", "audio_speech tts-1", "batch"]
    assert all(s.end_time > s.start_time for s in finished(spans))


def _sdk_methods() -> dict[tuple[str, str, str], Any]:
    """Every function defined on every class of the SDK's resource, client and stream-helper modules."""
    import importlib
    import pkgutil

    import openai.resources

    names = ["openai._base_client", "openai.lib.streaming.chat._completions", "openai.lib.streaming.responses._responses"]
    names += [m.name for m in pkgutil.walk_packages(openai.resources.__path__, "openai.resources.")]
    found = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a stream helper this (old) openai release does not have
            continue
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == name:
                found.update({(name, cls.__name__, k): v for k, v in vars(cls).items() if callable(v)})
    return found


def test_uninstrument_restores_every_patched_method(instrument: Any) -> None:
    before = _sdk_methods()
    instrumentor = instrument()
    during = _sdk_methods()
    changed = [k for k, v in before.items() if during[k] is not v]
    assert len(changed) >= 20 and (chat_module().__name__, "Completions", "create") in changed
    instrumentor.uninstrument()
    after = _sdk_methods()
    assert [k for k, v in before.items() if after[k] is not v] == []  # each one the very object it was


def test_content_is_not_captured_by_default(instrumented: Any, api: Api, spans: Any) -> None:
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    attrs = only_span(spans).attributes
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert "Say this is a test" not in repr(dict(attrs))


def test_content_is_captured_when_opted_in(instrument: Any, api: Api, spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrument()
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    attrs = only_span(spans).attributes
    assert "Say this is a test" in attrs["gen_ai.input.messages"]
    assert "This is a test." in attrs["gen_ai.output.messages"]


def test_api_key_is_only_a_fingerprint(instrumented: Any, api: Api, spans: Any, reader: Any) -> None:
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    everything = repr([dict(s.attributes) for s in finished(spans)]) + repr(reader.get_metrics_data().to_json())
    assert "SENTINEL" not in everything and API_KEY not in everything
    assert KEY_ID in everything and len(KEY_ID) == 12
