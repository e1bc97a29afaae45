"""Replay real recorded OpenAI traffic (tests/data/recorded-openai, Apache-2.0, see its README):
tokens, ids, models and finish reasons on our spans and metrics equal what OpenAI really sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from otel_llm import semconv as sc
from tests.conftest import Api, FakeAPI, Reply, only_span, points

CASSETTES = sorted((Path(__file__).parent / "data" / "recorded-openai").glob("*.yaml"))


def _load(path: Path) -> tuple[str, dict[str, Any], int, str]:
    interaction = yaml.safe_load(path.read_text())["interactions"][0]
    request, response = interaction["request"], interaction["response"]
    return request["uri"], json.loads(request["body"]), response["status"]["code"], response["body"]["string"]


def _expected(uri: str, body_text: str) -> dict[str, Any]:
    """What the recorded response says, computed from the recording alone."""
    if body_text.lstrip().startswith(("data:", "event:")):
        events = [json.loads(line[5:]) for line in body_text.splitlines() if line.startswith("data:") and "[DONE]" not in line]
        if uri.endswith("/responses"):
            final = next(e["response"] for e in events if e.get("type") == "response.completed")
            return _expected(uri, json.dumps(final))
        usage = next((e["usage"] for e in events if e.get("usage")), None)
        reasons = tuple(c["finish_reason"] for e in events for c in e.get("choices", []) if c.get("finish_reason"))
        return {"id": events[0]["id"], "model": events[0]["model"], "reasons": reasons,
                "input": usage and usage["prompt_tokens"], "output": usage and usage["completion_tokens"]}
    data = json.loads(body_text)
    usage = data.get("usage") or {}
    if uri.endswith("/responses"):
        details = usage.get("input_tokens_details") or {}
        return {"id": data["id"], "model": data["model"], "reasons": (data["status"],),
                "input": usage["input_tokens"], "output": usage["output_tokens"],
                "cached": details.get("cached_tokens", 0),
                "reasoning": (usage.get("output_tokens_details") or {}).get("reasoning_tokens", 0)}
    if uri.endswith("/embeddings"):
        return {"id": None, "model": data["model"], "reasons": (), "input": usage["prompt_tokens"], "output": None}
    return {"id": data["id"], "model": data["model"], "reasons": tuple(c["finish_reason"] for c in data["choices"]),
            "input": usage["prompt_tokens"], "output": usage["completion_tokens"],
            "cached": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)}


@pytest.mark.parametrize("cassette", CASSETTES, ids=[c.stem for c in CASSETTES])
def test_replayed_traffic_gives_the_recorded_figures(instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, cassette: Path,
                                                      semconv_mode: str) -> None:
    uri, request, status, body_text = _load(cassette)
    is_sse = body_text.lstrip().startswith(("data:", "event:"))
    fake.reply(Reply(status, sse=body_text) if is_sse else Reply(status, json.loads(body_text)))
    method = {"/chat/completions": "chat.completions.create", "/embeddings": "embeddings.create",
              "/responses": "responses.create"}[uri.split("/v1", 1)[1]]
    kwargs = {k: v for k, v in request.items() if k not in ("stream_options",)} | (
        {"stream_options": request["stream_options"]} if "stream_options" in request else {})

    if status >= 400:
        with pytest.raises(openai.APIStatusError) as err:
            api.call(method, **kwargs)
        span = only_span(spans)
        assert span.attributes["http.response.status_code"] == status == err.value.status_code
        assert span.attributes["error.type"] == type(err.value).__name__
        return

    result = api.call(method, **kwargs)
    if request.get("stream"):
        api.consume(result)
    want = _expected(uri, body_text)
    attrs = only_span(spans).attributes
    assert attrs.get("gen_ai.response.id") == want["id"]
    assert attrs["gen_ai.response.model"] == want["model"]
    assert attrs.get("gen_ai.response.finish_reasons", ()) == want["reasons"]
    assert attrs.get("gen_ai.usage.input_tokens") == want["input"]
    if want["output"] is not None:
        assert attrs.get("gen_ai.usage.output_tokens") == want["output"]
    if want.get("cached"):
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == want["cached"]
    if want.get("reasoning"):
        assert attrs["gen_ai.usage.reasoning.output_tokens"] == want["reasoning"]
    # The pinned latest conventions have no token metric for embeddings (only inference has one).
    if want["input"] is not None and not (semconv_mode == "latest" and method == "embeddings.create"):
        sums = {dict(p.attributes)["gen_ai.token.type"]: p.sum for p in points(reader, sc.GEN_AI_CLIENT_TOKEN_USAGE)}
        assert sums["input"] == want["input"]
