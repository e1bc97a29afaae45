"""Where a stream's usage and finish reasons arrive differs by server: a usage-only last chunk (OpenAI),
usage on the finish chunk, a running total on every chunk, several choices finishing apart. The span
and the sums read the same figures from each shape, and the app sees exactly the chunks the server sent
(only the usage chunk we asked for on its behalf is hidden)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from otel_llm import semconv as sc
from tests.conftest import Api, FakeAPI, Reply, only_span, total

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


def _chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
    body = {"id": "chatcmpl-shape", "object": "chat.completion.chunk", "created": 1731368639,
            "model": "gpt-4.1-2025-04-14", "choices": choices, "usage": usage}
    return f"data: {json.dumps(body)}\n\n"


def _delta(text: str, index: int = 0, finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": finish}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(*chunks: str) -> str:
    return "".join(chunks) + "data: [DONE]\n\n"


def _run(instrument: Any, api: Api, fake: FakeAPI, sse: str, **settings: Any) -> list[Any]:
    fake.reply(Reply(sse=sse))
    instrument(**settings)
    return api.consume(api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True))


def test_usage_on_the_finish_chunk_is_read_and_the_chunk_shown(instrument: Any, api: Api, fake: FakeAPI,
                                                                spans: Any, reader: Any) -> None:
    sse = _sse(*(_chunk([_delta(f"w{i} ")]) for i in range(30)),
               _chunk([_delta("", finish="stop")], _usage(40, 31)))
    chunks = _run(instrument, api, fake, sse)

    assert len(chunks) == 31 and chunks[-1].usage.completion_tokens == 31
    span = only_span(spans)
    assert (span.attributes["gen_ai.usage.input_tokens"], span.attributes["gen_ai.usage.output_tokens"]) == (40, 31)
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert span.attributes["otel_llm.stream.chunks"] == 31
    assert total(reader, sc.TOKENS, gen_ai__token__type="output") == 31


def test_a_running_total_on_every_chunk_counts_its_last_value(instrument: Any, api: Api, fake: FakeAPI,
                                                               spans: Any, reader: Any) -> None:
    """vLLM's continuous usage stats: every chunk carries the usage so far; the last one is the call's."""
    sse = _sse(*(_chunk([_delta(f"w{i} ")], _usage(40, i + 1)) for i in range(20)),
               _chunk([_delta("", finish="stop")], _usage(40, 20)),
               _chunk([_delta("")], _usage(40, 21)))  # a trailing content chunk after the finish
    chunks = _run(instrument, api, fake, sse)

    assert len(chunks) == 22
    span = only_span(spans)
    assert span.attributes["gen_ai.usage.output_tokens"] == 21
    assert total(reader, sc.TOKENS, gen_ai__token__type="output") == 21
    assert total(reader, sc.TOKENS, gen_ai__token__type="input") == 40


def test_a_running_total_on_the_content_chunks_only_counts_its_last_value(instrument: Any, api: Api, fake: FakeAPI,
                                                                           spans: Any, reader: Any) -> None:
    """The total rides on the content chunks, and the finish chunk carries none: the last total is the call's."""
    sse = _sse(*(_chunk([_delta(f"w{i} ")], _usage(40, i + 1)) for i in range(12)),
               _chunk([_delta("", finish="stop")]))
    _run(instrument, api, fake, sse, include_stream_usage="never")

    assert only_span(spans).attributes["gen_ai.usage.output_tokens"] == 12
    assert total(reader, sc.TOKENS, gen_ai__token__type="output") == 12


def test_choices_that_finish_apart_each_give_their_reason(instrument: Any, api: Api, fake: FakeAPI, spans: Any) -> None:
    """n=2: choice 1 stops early, choice 0 runs to its length limit; both reasons, in the order they came."""
    sse = _sse(_chunk([_delta("a", 0), _delta("b", 1)]),
               _chunk([_delta("c", 1, finish="stop")]),
               *(_chunk([_delta(f"w{i} ", 0)]) for i in range(10)),
               _chunk([_delta("", 0, finish="length")]),
               _chunk([], _usage(40, 12)))
    chunks = _run(instrument, api, fake, sse, include_stream_usage="never")

    assert len(chunks) == 14  # the app asked for nothing: it sees the usage chunk the server sent
    span = only_span(spans)
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop", "length")
    assert span.attributes["gen_ai.usage.output_tokens"] == 12


@pytest.mark.parametrize("asked", [True, False], ids=["we-asked", "the-app-asked"])
def test_only_the_usage_chunk_we_asked_for_is_hidden(instrument: Any, api: Api, fake: FakeAPI, spans: Any,
                                                     asked: bool) -> None:
    sse = _sse(*(_chunk([_delta(f"w{i} ")]) for i in range(5)),
               _chunk([_delta("", finish="stop")]),
               _chunk([], _usage(40, 6)))
    fake.reply(Reply(sse=sse))
    instrument(include_stream_usage="always")
    kwargs: dict[str, Any] = {} if asked else {"stream_options": {"include_usage": True}}
    chunks = api.consume(api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True, **kwargs))

    assert len(chunks) == (6 if asked else 7)
    assert all(c.choices for c in chunks) is asked
    span = only_span(spans)
    assert span.attributes["otel_llm.stream.chunks"] == len(chunks)
    assert span.attributes["gen_ai.usage.output_tokens"] == 6


def test_a_stream_left_early_still_reads_the_last_chunk_it_saw(instrument: Any, api: Api, fake: FakeAPI,
                                                                spans: Any) -> None:
    """The app breaks out after the chunk that carried the running total: the span keeps that figure."""
    sse = _sse(*(_chunk([_delta(f"w{i} ")], _usage(40, i + 1)) for i in range(20)))
    fake.reply(Reply(sse=sse))
    instrument(include_stream_usage="never")
    stream = api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True)
    got = api.consume(stream, limit=5)
    api.run(stream.close()) if api.is_async else stream.close()

    assert len(got) == 5
    assert only_span(spans).attributes["gen_ai.usage.output_tokens"] == 5


def test_a_chunk_our_reading_cannot_take_passes_untouched_and_the_usage_chunk_stays_hidden(
    instrument: Any, api: Api, fake: FakeAPI, spans: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """A hostile gateway's chunk whose `choices` is a string: reading it faults inside our per-chunk path
    (past the first chunk, where only a count is kept). The app gets every chunk as sent, the usage chunk
    we asked for stays hidden, the span ends once, and the fault is logged once at debug level."""
    plain = [_chunk([_delta(f"w{i} ")]) for i in range(8)]
    sse = _sse(*plain[:5], _chunk([_delta("x")]).replace('"choices": [', '"choices": "x", "was": ['),
               *plain[5:], _chunk([_delta("", finish="stop")]), _chunk([], _usage(40, 9)))
    fake.reply(Reply(sse=sse))
    instrument(include_stream_usage="always")
    chunks = api.consume(api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True))

    assert len(chunks) == 10 and chunks[5].choices == "x"
    assert all(c.usage is None for c in chunks)  # the usage chunk we asked for: never shown
    assert only_span(spans).end_time is not None
    faults = [r for r in caplog.records if r.name == "otel_llm" and "internal error" in r.getMessage()]
    assert len(faults) == 1 and faults[0].levelno == logging.DEBUG
