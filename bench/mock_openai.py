"""The real `openai` SDK driven through httpx2's MockTransport, with realistic canned responses.

Bodies are encoded once at import so the handler costs the same few microseconds for every
contender; the SDK still builds the request, parses JSON/SSE and validates the pydantic models.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any

import httpx2
import openai

__all__ = [
    "API_KEY",
    "CHAT_MODEL",
    "EMBEDDING_MODEL",
    "RESPONSE_MODEL",
    "USAGE",
    "async_client",
    "chat_body",
    "embeddings_body",
    "stream_body",
    "sync_client",
]

API_KEY = "sk-bench-0123456789abcdef0123456789abcdef"
CHAT_MODEL = "o4-mini"
RESPONSE_MODEL = "o4-mini-2025-04-16"
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMS = 1536

# prompt 1,117 tokens of which 1,024 came from the provider's prompt cache; 142 output of which 64
# were reasoning: every usage branch (cache_read, reasoning, prompt size "medium") is exercised.
USAGE: dict[str, Any] = {
    "prompt_tokens": 1117,
    "completion_tokens": 142,
    "total_tokens": 1259,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 64,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}

_HEADERS_COMMON = {
    "x-request-id": "req_5f0c8d8e2b6a4c1d9e7f3a2b1c0d9e8f",
    "openai-processing-ms": "412",
    "openai-version": "2020-10-01",
    "x-ratelimit-limit-requests": "30000",
    "x-ratelimit-remaining-requests": "29999",
    "x-ratelimit-limit-tokens": "150000000",
    "x-ratelimit-remaining-tokens": "149998700",
}
_JSON_HEADERS = {**_HEADERS_COMMON, "content-type": "application/json"}
_SSE_HEADERS = {**_HEADERS_COMMON, "content-type": "text/event-stream; charset=utf-8"}

_WORDS = ("The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog", ". ")


def chat_body() -> bytes:
    """A non-streaming chat completion with cached and reasoning token details."""
    content = "".join(_WORDS[i % len(_WORDS)] for i in range(50))
    return json.dumps(
        {
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion",
            "created": 1741569952,
            "model": RESPONSE_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }
    ).encode()


def stream_body(content_chunks: int) -> bytes:
    """SSE: `content_chunks` content deltas, a finish chunk, a usage chunk (choices: []), [DONE]."""
    base = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": RESPONSE_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }
    events: list[dict[str, Any]] = []
    for i in range(content_chunks):
        delta: dict[str, Any] = {"content": _WORDS[i % len(_WORDS)]}
        if i == 0:
            delta = {"role": "assistant", "content": delta["content"], "refusal": None}
        events.append(
            {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
             "usage": None}
        )
    events.append(
        {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], "usage": None}
    )
    events.append({**base, "choices": [], "usage": USAGE})
    lines = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events]
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def embeddings_body(encoding: str) -> bytes:
    """One 1,536-dimension embedding, as base64 float32 (the SDK's default request) or floats."""
    vector = [((i * 7919) % 1000) / 1000.0 - 0.5 for i in range(EMBEDDING_DIMS)]
    embedding: Any = (
        base64.b64encode(struct.pack(f"<{EMBEDDING_DIMS}f", *vector)).decode() if encoding == "base64" else vector
    )
    return json.dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
            "model": EMBEDDING_MODEL,
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        }
    ).encode()


def _handler(stream_chunks: int) -> Callable[[httpx2.Request], httpx2.Response]:
    chat = chat_body()
    stream = stream_body(stream_chunks)
    emb_b64 = embeddings_body("base64")
    emb_float = embeddings_body("float")

    def handle(request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        content = request.content
        if path.endswith("/chat/completions"):
            if b'"stream":true' in content or b'"stream": true' in content:
                return httpx2.Response(200, headers=_SSE_HEADERS, content=stream)
            return httpx2.Response(200, headers=_JSON_HEADERS, content=chat)
        if path.endswith("/embeddings"):
            body = emb_b64 if b'"base64"' in content else emb_float
            return httpx2.Response(200, headers=_JSON_HEADERS, content=body)
        return httpx2.Response(404, headers=_JSON_HEADERS, content=b'{"error": {"message": "not mocked"}}')

    return handle


def sync_client(stream_chunks: int = 50) -> openai.OpenAI:
    """An `openai.OpenAI` whose transport answers from memory (no sockets, no retries)."""
    transport = httpx2.MockTransport(_handler(stream_chunks))
    return openai.OpenAI(
        api_key=API_KEY, max_retries=0, http_client=openai.DefaultHttpxClient(transport=transport)
    )


def async_client(stream_chunks: int = 50) -> openai.AsyncOpenAI:
    transport = httpx2.MockTransport(_handler(stream_chunks))
    return openai.AsyncOpenAI(
        api_key=API_KEY, max_retries=0, http_client=openai.DefaultAsyncHttpxClient(transport=transport)
    )
