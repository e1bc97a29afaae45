"""The OpenAI endpoints: each turns a validated request into a reply and the usage it bills.

Handlers never touch sockets or sleep; they return a `Served` whose reply carries the delays, and the
HTTP layer plays it out. Wire shapes follow OpenAI's API, including the stream framing: chat and
completions chunks end with `data: [DONE]`, a usage-only chunk with empty `choices` comes only with
`stream_options.include_usage`, and Responses streams are typed events numbered by `sequence_number`.
"""

from __future__ import annotations

import base64
import random
import struct
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .cache import PromptCache
from .config import SimulatorConfig
from .generate import Generation, generate, seed_of
from .latency import Timing, plan_timing
from .models import ModelSpec
from .prompts import chat_pieces, input_pieces, responses_pieces
from .replies import ApiError, JsonReply, StreamReply, sse_data, sse_done, sse_event
from .usage import Usage

__all__ = ["Context", "Handler", "Served", "chat_completions", "completions", "embeddings", "responses"]

_FINGERPRINT: Final = "fp_simulator"
_LEGACY_DEFAULT_MAX_TOKENS: Final = 16  # OpenAI's default for /v1/completions


@dataclass(frozen=True)
class Context:
    """One validated request: its JSON body, its model, and the shared state it may use."""

    body: Mapping[str, Any]
    model: ModelSpec
    config: SimulatorConfig
    cache: PromptCache


@dataclass(frozen=True)
class Served:
    reply: JsonReply | StreamReply
    usage: Usage


Handler = Callable[[Context], Served]


# --- chat completions ---------------------------------------------------------------------------
def chat_completions(ctx: Context) -> Served:
    pieces = chat_pieces(ctx.body)
    max_tokens = _max_tokens(ctx.body, "max_completion_tokens", "max_tokens")
    choices = _generate_choices(ctx, pieces, max_tokens, ctx.body.get("reasoning_effort"))
    usage = _usage(pieces, choices, ctx.cache.lookup_and_store(ctx.model.id, pieces))
    timing = _timing(ctx, pieces, choices)
    header = _header(ctx, "chatcmpl-", "chat.completion")
    if ctx.body.get("stream") is True:
        header["object"] = "chat.completion.chunk"
        events = _chat_chunks(header, choices, usage, timing, _include_usage(ctx.body))
        return Served(StreamReply(events), usage)
    body = {
        **header,
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": choice.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
            for index, choice in enumerate(choices)
        ],
        "usage": usage.chat(),
    }
    return Served(JsonReply(200, body, delay=timing.total(_longest(choices))), usage)


def _chat_chunks(
    header: dict[str, Any], choices: Sequence[Generation], usage: Usage, timing: Timing, include_usage: bool
) -> Iterator[tuple[float, bytes]]:
    # With include_usage every chunk carries "usage": null, as OpenAI's do.
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_data({**header, "choices": [choice], **extra})

    # The role chunk is the first to arrive, so it is the one that waits for the first token.
    for index in range(len(choices)):
        delay = timing.first_chunk if index == 0 else 0.0
        yield delay, chunk(index, {"role": "assistant", "content": "", "refusal": None})
    for step, delay in _steps(choices, timing, first=timing.per_chunk):
        for index, choice in enumerate(choices):
            if step < len(choice.deltas):
                yield delay, chunk(index, {"content": choice.deltas[step]})
                delay = 0.0
    for index, choice in enumerate(choices):
        yield 0.0, chunk(index, {}, choice.finish_reason)
    if include_usage:
        yield 0.0, sse_data({**header, "choices": [], "usage": usage.chat()})
    yield 0.0, sse_done()


# --- legacy completions -------------------------------------------------------------------------
def completions(ctx: Context) -> Served:
    prompts = input_pieces(ctx.body, "prompt")
    max_tokens = _max_tokens(ctx.body, "max_tokens") or _LEGACY_DEFAULT_MAX_TOKENS
    # Choices are grouped by prompt: prompt p's j-th choice has index p * n + j, as at OpenAI.
    choices = [choice for pieces in prompts for choice in _generate_choices(ctx, pieces, max_tokens, None)]
    pieces = [piece for prompt in prompts for piece in prompt]
    usage = _usage(pieces, choices, cached=0)  # OpenAI reports no prompt caching on this legacy API
    timing = _timing(ctx, pieces, choices)
    header = _header(ctx, "cmpl-", "text_completion")
    if ctx.body.get("stream") is True:
        return Served(
            StreamReply(_completion_chunks(header, choices, usage, timing, _include_usage(ctx.body))), usage
        )
    body = {
        **header,
        "choices": [
            {"text": choice.text, "index": index, "logprobs": None, "finish_reason": choice.finish_reason}
            for index, choice in enumerate(choices)
        ],
        "usage": usage.chat(),
    }
    return Served(JsonReply(200, body, delay=timing.total(_longest(choices))), usage)


def _completion_chunks(
    header: dict[str, Any], choices: Sequence[Generation], usage: Usage, timing: Timing, include_usage: bool
) -> Iterator[tuple[float, bytes]]:
    def chunk(index: int, text: str, finish: str | None = None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
        return sse_data({**header, "choices": [choice]})

    for step, delay in _steps(choices, timing):
        for index, choice in enumerate(choices):
            if step < len(choice.deltas):
                yield delay, chunk(index, choice.deltas[step])
                delay = 0.0
    for index, choice in enumerate(choices):
        yield 0.0, chunk(index, "", choice.finish_reason)
    if include_usage:
        yield 0.0, sse_data({**header, "choices": [], "usage": usage.chat()})
    yield 0.0, sse_done()


# --- embeddings ---------------------------------------------------------------------------------
def embeddings(ctx: Context) -> Served:
    inputs = input_pieces(ctx.body, "input")
    dimensions = _dimensions(ctx)
    encoding = ctx.body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(
            400, f"Invalid encoding_format {encoding!r}: use 'float' or 'base64'.", param="encoding_format"
        )
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encode(_vector(ctx.model.id, pieces, dimensions), encoding),
        }
        for index, pieces in enumerate(inputs)
    ]
    usage = Usage(prompt_tokens=sum(len(pieces) for pieces in inputs))
    delay = plan_timing(seed_of([ctx.model.id, str(usage.prompt_tokens)]), ctx.config, ctx.model).first_chunk
    body = {"object": "list", "data": data, "model": ctx.model.id, "usage": usage.embeddings()}
    return Served(JsonReply(200, body, delay=delay), usage)


def _dimensions(ctx: Context) -> int:
    requested = ctx.body.get("dimensions")
    if requested is None:
        return ctx.model.dimensions
    if not ctx.model.id.startswith("text-embedding-3"):
        raise ApiError(400, "This model does not support specifying dimensions.", param="dimensions")
    if not isinstance(requested, int) or not 1 <= requested <= ctx.model.dimensions:
        raise ApiError(400, f"'dimensions' must be between 1 and {ctx.model.dimensions}.", param="dimensions")
    return requested


def _vector(model: str, pieces: Sequence[str], dimensions: int) -> tuple[float, ...]:
    """A unit vector seeded by the input, rounded to float32 so float and base64 replies agree."""
    rng = random.Random(seed_of([model, *pieces]))
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(value * value for value in raw) ** 0.5 or 1.0
    packed = struct.pack(f"<{dimensions}f", *(value / norm for value in raw))
    return struct.unpack(f"<{dimensions}f", packed)


def _encode(vector: tuple[float, ...], encoding: str) -> list[float] | str:
    if encoding == "float":
        return list(vector)
    # OpenAI's base64 is the little-endian float32 array, which the SDK decodes with array("f").
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


# --- responses ----------------------------------------------------------------------------------
def responses(ctx: Context) -> Served:
    pieces = responses_pieces(ctx.body)
    max_tokens = _max_tokens(ctx.body, "max_output_tokens")
    reasoning = ctx.body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    (choice,) = _generate_choices(ctx, pieces, max_tokens, effort, count=1)
    usage = _usage(pieces, [choice], ctx.cache.lookup_and_store(ctx.model.id, pieces))
    timing = _timing(ctx, pieces, [choice])
    ids = _ResponseIds.new(ctx.model.reasoning)
    final = _response_object(ctx, ids, choice, usage)
    if ctx.body.get("stream") is True:
        return Served(StreamReply(_response_events(ctx, ids, choice, final, timing)), usage)
    return Served(JsonReply(200, final, delay=timing.total(len(choice.deltas))), usage)


@dataclass(frozen=True)
class _ResponseIds:
    response: str
    message: str
    reasoning: str | None
    created_at: int

    @classmethod
    def new(cls, reasoning: bool) -> _ResponseIds:
        return cls(_id("resp_"), _id("msg_"), _id("rs_") if reasoning else None, int(time.time()))


def _response_object(
    ctx: Context, ids: _ResponseIds, choice: Generation | None, usage: Usage | None
) -> dict[str, Any]:
    """The Response resource; with no choice, the in-progress snapshot that opens a stream."""
    incomplete = choice is not None and choice.finish_reason == "length"
    status = "in_progress" if choice is None else "incomplete" if incomplete else "completed"
    reasoning = ctx.body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return {
        "id": ids.response,
        "object": "response",
        "created_at": ids.created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": ctx.body.get("instructions"),
        "max_output_tokens": ctx.body.get("max_output_tokens"),
        "model": ctx.model.id,
        "output": [] if choice is None else _output_items(ids, choice, done=True),
        "parallel_tool_calls": True,
        "previous_response_id": ctx.body.get("previous_response_id"),
        "reasoning": {"effort": effort, "summary": None},
        "service_tier": "default",
        "store": ctx.body.get("store", True),
        "temperature": ctx.body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": ctx.body.get("tool_choice", "auto"),
        "tools": [],
        "top_p": ctx.body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None if usage is None else usage.responses(),
        "user": ctx.body.get("user"),
        "metadata": ctx.body.get("metadata") or {},
    }


def _output_items(ids: _ResponseIds, choice: Generation, done: bool) -> list[dict[str, Any]]:
    items = [] if ids.reasoning is None else [_reasoning_item(ids.reasoning)]
    return items + [_message_item(ids.message, choice.text if done else None)]


def _reasoning_item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": []}


def _message_item(item_id: str, text: str | None) -> dict[str, Any]:
    """The assistant message item; text None gives the empty in-progress item of output_item.added."""
    return {
        "id": item_id,
        "type": "message",
        "status": "in_progress" if text is None else "completed",
        "role": "assistant",
        "content": [] if text is None else [_text_part(text)],
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _response_events(
    ctx: Context, ids: _ResponseIds, choice: Generation, final: dict[str, Any], timing: Timing
) -> Iterator[tuple[float, bytes]]:
    """OpenAI's event sequence: created, in_progress, [reasoning item], message item with its
    content part and text deltas, then completed (or incomplete when max_output_tokens cut it)."""
    sequence = iter(range(1_000_000))

    def event(name: str, **fields: Any) -> bytes:
        return sse_event(name, {"type": name, "sequence_number": next(sequence), **fields})

    opening = _response_object(ctx, ids, None, None)
    yield 0.0, event("response.created", response=opening)
    yield 0.0, event("response.in_progress", response=opening)
    index = 0
    if ids.reasoning is not None:
        item = _reasoning_item(ids.reasoning)
        yield timing.first_chunk, event("response.output_item.added", output_index=0, item=item)
        yield 0.0, event("response.output_item.done", output_index=0, item=item)
        index = 1
    where = {"item_id": ids.message, "output_index": index, "content_index": 0}
    added = _message_item(ids.message, None)
    yield 0.0, event("response.output_item.added", output_index=index, item=added)
    yield 0.0, event("response.content_part.added", **where, part=_text_part(""))
    for step, delay in _steps([choice], timing, first=0.0 if ids.reasoning else timing.first_chunk):
        yield delay, event("response.output_text.delta", **where, delta=choice.deltas[step], logprobs=[])
    yield 0.0, event("response.output_text.done", **where, text=choice.text, logprobs=[])
    yield 0.0, event("response.content_part.done", **where, part=_text_part(choice.text))
    yield (
        0.0,
        event("response.output_item.done", output_index=index, item=_message_item(ids.message, choice.text)),
    )
    closing = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield 0.0, event(closing, response=final)


# --- shared helpers -----------------------------------------------------------------------------
def _generate_choices(
    ctx: Context, pieces: Sequence[str], max_tokens: int | None, effort: Any, count: int | None = None
) -> list[Generation]:
    n = count if count is not None else _int(ctx.body, "n", 1, 128) or 1
    # An explicit `seed` changes the reply, as a sampling seed would.
    base = [ctx.model.id, str(ctx.body.get("seed", "")), *pieces]
    return [
        generate(
            seed_of([*base, str(index)]),
            ctx.config,
            reasoning=ctx.model.reasoning,
            max_tokens=max_tokens,
            effort=effort if isinstance(effort, str) else None,
        )
        for index in range(n)
    ]


def _usage(pieces: Sequence[str], choices: Sequence[Generation], cached: int) -> Usage:
    return Usage(
        prompt_tokens=len(pieces),
        completion_tokens=sum(choice.output_tokens for choice in choices),
        cached_tokens=cached,
        reasoning_tokens=sum(choice.reasoning_tokens for choice in choices),
    )


def _timing(ctx: Context, pieces: Sequence[str], choices: Sequence[Generation]) -> Timing:
    reasoning = max(choice.reasoning_tokens for choice in choices)
    return plan_timing(seed_of([ctx.model.id, *pieces]), ctx.config, ctx.model, reasoning)


def _steps(
    choices: Sequence[Generation], timing: Timing, first: float | None = None
) -> Iterator[tuple[int, float]]:
    """(token step, delay before it): the first visible token waits TTFT, later ones the chunk delay."""
    for step in range(_longest(choices)):
        if step == 0:
            yield step, timing.first_chunk if first is None else first
        else:
            yield step, timing.per_chunk


def _longest(choices: Sequence[Generation]) -> int:
    return max(len(choice.deltas) for choice in choices)


def _header(ctx: Context, prefix: str, object_name: str) -> dict[str, Any]:
    return {
        "id": _id(prefix),
        "object": object_name,
        "created": int(time.time()),
        "model": ctx.model.id,
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _max_tokens(body: Mapping[str, Any], *names: str) -> int | None:
    """The first of `names` that is set; OpenAI accepts max_tokens as the older alias."""
    for name in names:
        value = _int(body, name, 1, 1_000_000)
        if value is not None:
            return value
    return None


def _int(body: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"Invalid '{name}': expected an integer between {low} and {high}.", param=name)
    return value


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]
