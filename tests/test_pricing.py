"""Cost in USD: each token class at its price, overrides, tiers, unknown models, and totals that agree."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import openai
import pytest

import otel_llm
from otel_llm import semconv as sc
from otel_llm.extract import usage_of
from otel_llm.pricing import PriceBook, PricesFileError, Rate, Rates, Usage, load_prices_file
from tests.conftest import Api, FakeAPI, Reply, finished, fixture_json, needs_sdk, only_span, points, total

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "prices.yaml")
M = 1e-6
MESSAGES = [{"role": "user", "content": "hi"}]


def test_each_token_class_at_its_price_on_real_sdk_usage_objects() -> None:
    rates = Rates(input=Rate(2 * M), output=Rate(8 * M), cache_read=Rate(0.5 * M), cache_write=Rate(2.5 * M),
                  input_audio=Rate(40 * M), output_audio=Rate(80 * M))
    chat = openai.types.chat.ChatCompletion.model_validate(fixture_json("chat_completion.json"))
    usage = usage_of(chat.usage)
    assert usage == Usage(input=1200, output=300, cache_read=1024, reasoning=100)
    # 176 plain input + 1024 cached; output includes the 100 reasoning tokens
    assert rates.cost(usage).usd == pytest.approx(176 * 2 * M + 1024 * 0.5 * M + 300 * 8 * M)
    assert rates.cost(usage).cache_savings_usd == pytest.approx(1024 * 1.5 * M)

    audio = Usage(input=1000, output=500, cache_write=100, input_audio=300, output_audio=200)
    expected = 600 * 2 * M + 100 * 2.5 * M + 300 * 40 * M + 300 * 8 * M + 200 * 80 * M
    assert rates.cost(audio).usd == pytest.approx(expected)


def test_a_responses_api_usage_object_reads_the_same_token_classes() -> None:
    response = needs_sdk(openai, "types.responses.Response").model_validate(fixture_json("response.json"))
    assert usage_of(response.usage) == Usage(input=2000, output=400, cache_read=1500, reasoning=150)


def test_audio_tokens_fall_back_to_text_prices_when_the_model_has_none() -> None:
    rates = Rates(input=Rate(1 * M), output=Rate(2 * M))
    assert rates.cost(Usage(input=100, output=10, input_audio=50)).usd == pytest.approx(100 * M + 20 * M)


def test_image_input_tokens_are_priced_at_the_image_rate(tmp_path: Path) -> None:
    # gpt-image-1 edits bill the input images as image tokens, at twice the text price (genai-prices:
    # $5 text input, $10 image input, $40 output per million). The Images API reports them in
    # input_tokens_details.image_tokens.
    edit = openai.types.ImagesResponse.model_validate({
        "created": 1, "data": [{"b64_json": "AAAA"}],
        "usage": {"input_tokens": 1200, "output_tokens": 4160, "total_tokens": 5360,
                  "input_tokens_details": {"text_tokens": 50, "image_tokens": 1150}}})
    usage = usage_of(edit.usage)
    assert usage == Usage(input=1200, output=4160, input_image=1150)
    rates = PriceBook().rates("openai", "https://api.openai.com/v1", "gpt-image-1")
    assert rates is not None and rates.input_image is not None and rates.input_image.base == pytest.approx(10 * M)
    assert rates.cost(usage).usd == pytest.approx(50 * 5 * M + 1150 * 10 * M + 4160 * 40 * M)
    # A model without an image price bills them as input; a prices file can set one.
    assert Rates(input=Rate(1 * M), output=Rate(2 * M)).cost(usage).usd == pytest.approx(1200 * M + 4160 * 2 * M)
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  my-image-model: {input: 4.0, input_image: 8.0, output: 30.0}\n")
    mine = PriceBook(load_prices_file(path)).rates("openai_compatible", "http://x/v1", "my-image-model")
    assert mine is not None and mine.cost(usage).usd == pytest.approx(50 * 4 * M + 1150 * 8 * M + 4160 * 30 * M)


def test_an_image_edit_through_the_sdk_costs_its_image_tokens_at_the_image_rate(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    fake.reply(Reply(body={"created": 1, "data": [{"b64_json": "AAAA"}],
                           "usage": {"input_tokens": 1200, "output_tokens": 4160, "total_tokens": 5360,
                                     "input_tokens_details": {"text_tokens": 50, "image_tokens": 1150}}}))
    api.call("images.edit", model="gpt-image-1", image=("cat.png", b"\x89PNG....", "image/png"), prompt="a hat")
    expected = 50 * 5 * M + 1150 * 10 * M + 4160 * 40 * M
    assert only_span(spans).attributes[sc.COST_USD] == pytest.approx(expected)
    assert total(reader, sc.COST) == pytest.approx(expected)


def test_cliff_tiers_apply_to_all_tokens_past_the_threshold() -> None:
    book = PriceBook()
    rates = book.rates("anthropic", "https://api.anthropic.com/v1", "claude-sonnet-4-5")
    assert rates is not None
    assert rates.cost(Usage(input=199_999, output=1000)).usd == pytest.approx(199_999 * 3 * M + 1000 * 15 * M)
    assert rates.cost(Usage(input=200_000, output=1000)).usd == pytest.approx(200_000 * 6 * M + 1000 * 22.5 * M)


def test_service_tier_changes_the_price_where_the_source_knows_it() -> None:
    book = PriceBook()
    default = book.rates("openai", "https://api.openai.com/v1", "gpt-5")
    priority = book.rates("openai", "https://api.openai.com/v1", "gpt-5", "priority")
    assert default is not None and priority is not None
    one_m = Usage(input=1_000_000, output=1_000_000)
    assert default.cost(one_m).usd == pytest.approx(1.25 + 10)
    assert priority.cost(one_m).usd == pytest.approx(2.5 + 20)


def test_resolution_is_remembered() -> None:
    book = PriceBook()
    first = book.rates("openai", "https://api.openai.com/v1", "gpt-4.1")
    assert book.rates("openai", "https://api.openai.com/v1", "gpt-4.1") is first
    assert book.rates("openai_compatible", "http://x/v1", "no-such-model") is None


def test_overrides_per_model_and_per_base_url(tmp_path: Path) -> None:
    book = PriceBook(load_prices_file(EXAMPLE))
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=500_000)
    listed = book.rates("openai_compatible", "https://other.example.com/v1", "gpt-4.1")
    canary = book.rates("openai_compatible", "https://gateway.example.com/v1/", "gpt-4.1")
    assert listed is not None and canary is not None
    assert listed.cost(usage).usd == pytest.approx(0.5 * 2.00 + 0.5 * 1.00 + 8.00)
    assert canary.cost(usage).usd == pytest.approx(0.5 * 1.80 + 0.5 * 0.90 + 7.20)
    assert listed.source == "file:prices.yaml"  # the base name, as the README shows it
    flash = book.rates("openai_compatible", "https://x/v1", "gemini-2.5-flash")
    assert flash is not None and flash.cost(Usage(input=1_000_000, output=1_000_000)).usd == pytest.approx(0.35 + 2.50)
    toml = tmp_path / "prices.toml"
    toml.write_text('[models."my-model"]\ninput = 1.0\noutput = 4.0\n')
    mine = PriceBook(load_prices_file(toml)).rates("openai_compatible", "http://x/v1", "my-model")
    assert mine is not None and mine.cost(Usage(input=10, output=10)).usd == pytest.approx(50 * M)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("models:\n  gpt-4.1: {input: 2.0}\n", "models.gpt-4.1.output"),
        ("models:\n  gpt-4.1: {input: -1, output: 2}\n", "models.gpt-4.1.input"),
        ("models:\n  gpt-4.1: {input: 1, output: 2, cached: 1}\n", "models.gpt-4.1.cached"),
        ("modles: {}\n", "modles"),
        ("models: [1, 2]\n", "models"),
        ("models:\n  gpt-4.1: {input: 'cheap', output: 2}\n", "models.gpt-4.1.input"),
        ("models: {a: {input: 1, output: 1}\n", "(syntax)"),
    ],
)
def test_malformed_prices_file_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PricesFileError) as err:
        load_prices_file(path)
    assert err.value.key == key
    assert str(path) in str(err.value) and key in str(err.value)


def test_malformed_file_at_startup_logs_error_and_telemetry_carries_on(
    instrument: Any, api: Api, spans: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  gpt-4.1: {input: 2.0, ouput: 8.0}\n")
    instrument(prices=str(path))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "otel_llm"]
    assert len(errors) == 1 and str(path) in errors[0] and "models.gpt-4.1.ouput" in errors[0]
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    assert only_span(spans).attributes["otel_llm.price.source"] == "genai-prices:openai/gpt-4.1"


def test_unknown_model_is_counted_and_warned_once_never_priced_as_zero(
    instrument: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture
) -> None:
    instrument(prices=EXAMPLE)
    body = fixture_json("chat_completion.json") | {"model": "acme-llm-7b"}
    fake.reply(Reply(body=body), Reply(body=body))
    for _ in range(2):
        gateway_api.call("chat.completions.create", model="acme-llm-7b", messages=MESSAGES)

    for span in finished(spans):
        assert "otel_llm.cost.usd" not in span.attributes
        assert span.attributes["otel_llm.unpriced"] is True
        assert span.attributes["gen_ai.usage.input_tokens"] == 1200  # tokens are still recorded
    assert total(reader, sc.CALLS_UNPRICED, gen_ai__request__model="acme-llm-7b") == 2
    assert points(reader, sc.COST) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "acme-llm-7b" in r.getMessage()]
    assert len(warnings) == 1 and EXAMPLE in warnings[0]


def test_reference_model_records_what_routing_would_save(instrument: Any, api: Api, spans: Any, reader: Any) -> None:
    instrument(prices=EXAMPLE, reference_model="deepseek-v3.2")
    api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)

    expected = (176 * 0.14 + 1024 * 0.07 + 300 * 0.42) * M
    assert only_span(spans).attributes["otel_llm.cost.reference_usd"] == pytest.approx(expected)
    (point,) = points(reader, sc.COST_REFERENCE)
    labels = dict(point.attributes)
    assert (labels["otel_llm.reference.model"], labels["otel_llm.prompt.size"]) == ("deepseek-v3.2", "medium")
    assert point.value == pytest.approx(expected)


def test_streamed_usage_is_priced(instrument: Any, api: Api, spans: Any) -> None:
    instrument(prices=EXAMPLE)
    api.consume(api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True))
    assert only_span(spans).attributes["otel_llm.cost.usd"] == pytest.approx((40 * 2.00 + 51 * 8.00) * M)


def test_totals_agree_span_sum_counter_and_independent_arithmetic(instrument: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any) -> None:
    """Over a mixed workload, the sum of span costs equals the counter's total and tokens x prices."""
    instrument(prices=EXAMPLE)
    table = {"gpt-4.1": (1.80, 0.90, 7.20), "claude-sonnet-4.5": (3.00, 1.50, 15.00),
             "gemini-2.5-flash": (0.35, 0.175, 2.50), "deepseek-v3.2": (0.14, 0.07, 0.42)}
    rng = random.Random(7)
    expected = 0.0
    for i in range(60):
        model = rng.choice(sorted(table))
        prompt, cached, completion = rng.randint(10, 20000), 0, rng.randint(1, 2000)
        cached = rng.choice([0, prompt // 2])
        body = fixture_json("chat_completion.json") | {"model": model, "usage": {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}}
        fake.reply(Reply(body=body))
        with otel_llm.attributes(user_id=f"user-{i % 7}"):
            gateway_api.call("chat.completions.create", model=model, messages=MESSAGES)
        price_in, price_cached, price_out = table[model]
        expected += ((prompt - cached) * price_in + cached * price_cached + completion * price_out) * M

    span_sum = sum(s.attributes["otel_llm.cost.usd"] for s in finished(spans))
    counter_sum = total(reader, sc.COST)
    assert span_sum == pytest.approx(expected, rel=1e-9)
    assert counter_sum == pytest.approx(expected, rel=1e-9)


# Every OpenAI model family with a token price, as an app names it behind a gateway URL.
OPENAI_FAMILIES = {
    "chat": ["gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4.1", "gpt-4", "gpt-5"],
    "reasoning": ["o1", "o3-mini", "codex-mini-latest"],
    "embeddings": ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"],
    "legacy completions": ["davinci-002", "babbage-002", "gpt-3.5-turbo-instruct"],
    "audio": ["gpt-4o-audio-preview", "gpt-4o-transcribe", "gpt-4o-mini-tts", "gpt-realtime"],
    "image": ["gpt-image-1"],
}


@pytest.mark.parametrize("model", [m for family in OPENAI_FAMILIES.values() for m in family])
def test_openai_models_behind_a_gateway_url_get_openai_list_prices(model: str) -> None:
    book = PriceBook()
    at_openai = book.rates("openai", "https://api.openai.com/v1", model)
    behind = book.rates("openai_compatible", "http://127.0.0.1:4000/v1", model)
    assert at_openai is not None and behind is not None
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=100_000)
    assert behind.cost(usage) == at_openai.cost(usage)
    assert behind.source == at_openai.source + " (by model name)"


@pytest.mark.parametrize(("model", "provider"), [("llama-3.3-70b-versatile", "groq"), ("deepseek-chat", "deepseek"),
                                                 ("claude-sonnet-4-5", "anthropic")])
def test_other_providers_models_behind_a_gateway_are_found_by_name(model: str, provider: str) -> None:
    rates = PriceBook().rates("openai_compatible", "http://127.0.0.1:4000/v1", model)
    assert rates is not None and rates.source.startswith(f"genai-prices:{provider}/") and rates.source.endswith(
        " (by model name)")


def test_a_dated_response_model_falls_back_to_the_request_model_behind_a_gateway(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any
) -> None:
    body = fixture_json("completion.json") | {"model": "davinci:2023-07-21-v2"}
    fake.reply(Reply(body=body))
    gateway_api.call("completions.create", model="davinci-002", prompt="hi")
    attrs = only_span(spans).attributes
    assert attrs["gen_ai.response.model"] == "davinci:2023-07-21-v2"
    assert attrs["otel_llm.price.source"] == "genai-prices:openai/davinci-002 (by model name)"
    tokens = body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert attrs["otel_llm.cost.usd"] == pytest.approx(tokens * 2 * M)  # davinci-002: $2 in and out


def test_recorded_openai_traffic_through_a_local_url_is_priced_whenever_it_carries_usage(
    instrumented: Any, fake: FakeAPI, spans: Any
) -> None:
    import json

    from tests.test_replay import CASSETTES, _load

    api = Api("sync", fake, "http://127.0.0.1:4000/v1")
    try:
        for cassette in CASSETTES:
            uri, request, status, body_text = _load(cassette)
            if status >= 400:
                continue
            is_sse = body_text.lstrip().startswith(("data:", "event:"))
            fake.reply(Reply(status, sse=body_text) if is_sse else Reply(status, json.loads(body_text)))
            method = {"/chat/completions": "chat.completions.create", "/embeddings": "embeddings.create",
                      "/responses": "responses.create"}[uri.split("/v1", 1)[1]]
            result = api.call(method, **request)
            if request.get("stream"):
                api.consume(result)
    finally:
        api.close()
    with_usage = [s for s in finished(spans) if "gen_ai.usage.input_tokens" in s.attributes]
    unpriced = sorted({s.attributes["gen_ai.request.model"] for s in with_usage if "otel_llm.cost.usd" not in s.attributes})
    assert len(with_usage) >= 10 and unpriced == []
