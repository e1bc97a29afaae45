"""Tools the provider runs for a Responses API call (web search, file search, ...) are billed per run on top
of the tokens: web and file search are priced at OpenAI's list fee and added to the call's cost, and every
run is counted with whether its fee is in the cost, so a fee we cannot price is never a silent $0."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from otel_llm import hosted_tools
from otel_llm import semconv as sc
from otel_llm.pricing import PricesFileError, load_prices_file
from tests.conftest import Api, FakeAPI, Reply, fixture_json, fixture_text, only_span, points, total

ASK = {"model": "gpt-4.1", "input": "How many people live in Paris?"}
WEB_SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": "Paris population"}}
FILE_SEARCH = {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["Paris"], "results": None}
CODE = {"type": "code_interpreter_call", "id": "ci_1", "status": "completed", "code": "print(1)",
        "container_id": "cntr_1", "outputs": None}
FUNCTION = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup", "arguments": "{}",
            "status": "completed"}


def _body(*items: dict[str, Any], model: str = "gpt-4.1-2025-04-14") -> dict[str, Any]:
    body = fixture_json("response.json")
    body["model"] = model
    body["output"] = [*items, *body["output"]]
    return body


def _sse(*items: dict[str, Any]) -> str:
    """The recorded stream, its final `response.completed` event carrying `items` before the message."""
    events = fixture_text("response_stream.sse").split("\n\n")
    for i, event in enumerate(events):
        if event.startswith("event: response.completed"):
            head, data = event.split("\ndata: ", 1)
            payload = json.loads(data)
            payload["response"]["output"] = [*items, *payload["response"]["output"]]
            events[i] = f"{head}\ndata: {json.dumps(payload)}"
    return "\n\n".join(events)


def _call(api: Api, fake: FakeAPI, stream: bool, *items: dict[str, Any], **kwargs: Any) -> Any:
    fake.reply(Reply(sse=_sse(*items)) if stream else Reply(body=_body(*items, model=kwargs.get("model", ASK["model"]))))
    result = api.call("responses.create", **{**ASK, **kwargs}, stream=stream)
    if stream:
        return api.consume(result)
    return result


def _tool_points(reader: Any) -> list[dict[str, Any]]:
    return sorted(({**dict(p.attributes), "value": p.value} for p in points(reader, sc.HOSTED_TOOL_CALLS)),
                  key=lambda p: (p[sc.HOSTED_TOOL], p[sc.HOSTED_TOOL_PRICED]))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "otel_llm" and r.levelno == logging.WARNING and "hosted" in r.getMessage()]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_web_and_file_search_runs_add_openais_fee_per_run_to_the_cost(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, stream: bool,
) -> None:
    _call(api, fake, stream)  # the same response without tools: its tokens' cost
    plain = spans.get_finished_spans()[-1].attributes[sc.COST_USD]
    assert sc.TOOL_FEES_USD not in spans.get_finished_spans()[-1].attributes

    _call(api, fake, stream, WEB_SEARCH, {**WEB_SEARCH, "id": "ws_2"}, FILE_SEARCH, FUNCTION,
          tools=[{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}])
    span = spans.get_finished_spans()[-1].attributes
    assert span[sc.TOOL_FEES_USD] == pytest.approx(2 * 0.010 + 0.0025)
    assert span[sc.COST_USD] == pytest.approx(plain + 0.0225)
    assert span[f"{sc.HOSTED_TOOL_CALLS}.web_search"] == 2 and span[f"{sc.HOSTED_TOOL_CALLS}.file_search"] == 1
    assert sc.HOSTED_TOOL_UNPRICED not in span  # the app's own function call is no hosted tool, and free
    assert total(reader, sc.COST) == pytest.approx(2 * plain + 0.0225)
    endpoint = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4.1",
                "server.address": "api.openai.com"}
    assert _tool_points(reader) == [
        {**endpoint, sc.HOSTED_TOOL: "file_search", sc.HOSTED_TOOL_PRICED: "true", "value": 1},
        {**endpoint, sc.HOSTED_TOOL: "web_search", sc.HOSTED_TOOL_PRICED: "true", "value": 2},
    ]


@pytest.mark.parametrize(("model", "fee"), [("gpt-4.1", 0.025), ("o4-mini", 0.010), ("gpt-5", 0.010),
                                          ("gpt-5-chat-latest", 0.025)])
def test_the_preview_web_search_costs_more_on_a_model_that_does_not_reason(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, model: str, fee: float,
) -> None:
    _call(api, fake, False, WEB_SEARCH, model=model, tools=[{"type": "web_search_preview"}])
    assert spans.get_finished_spans()[-1].attributes[sc.TOOL_FEES_USD] == pytest.approx(fee)


def test_a_tool_billed_by_another_measure_is_counted_unpriced_and_warned_never_a_silent_zero(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    for _ in range(2):
        _call(api, fake, False, CODE, WEB_SEARCH, tools=[{"type": "code_interpreter", "container": {"type": "auto"}},
                                                         {"type": "web_search"}])
    span = spans.get_finished_spans()[-1].attributes
    assert span[sc.HOSTED_TOOL_UNPRICED] == ("code_interpreter",)
    assert span[sc.TOOL_FEES_USD] == pytest.approx(0.010)  # the web search is still priced
    assert [(p[sc.HOSTED_TOOL], p[sc.HOSTED_TOOL_PRICED], p["value"]) for p in _tool_points(reader)] == [
        ("code_interpreter", "false", 2), ("web_search", "true", 2)]
    warned = _warnings(caplog)
    assert len(warned) == 1 and "code_interpreter" in warned[0] and sc.HOSTED_TOOL_CALLS in warned[0]


def test_at_a_gateway_the_fee_follows_the_price_of_the_tokens(
    instrument: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any, tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # gpt-4.1 behind a gateway is priced at OpenAI's list: so is its web search.
    instrument()
    _call(gateway_api, fake, False, WEB_SEARCH, tools=[{"type": "web_search"}])
    assert only_span(spans).attributes[sc.TOOL_FEES_USD] == pytest.approx(0.010)
    # The gateway's own prices file: its tool fees are not OpenAI's to guess, so the run is counted unpriced.
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  gpt-4.1: {input: 1.0, output: 4.0}\n")
    instrument(prices=str(prices))
    _call(gateway_api, fake, False, WEB_SEARCH, tools=[{"type": "web_search"}])
    span = spans.get_finished_spans()[-1].attributes
    assert span[sc.PRICE_SOURCE] == "file:prices.yaml" and sc.TOOL_FEES_USD not in span
    assert span[sc.HOSTED_TOOL_UNPRICED] == ("web_search",)
    # (the sums outlive re-instrumenting: the first run is still there, priced)
    assert [(p[sc.HOSTED_TOOL_PRICED], p["value"]) for p in _tool_points(reader)] == [("false", 1), ("true", 1)]
    assert len(_warnings(caplog)) == 1


def test_a_cost_the_gateway_reports_already_holds_its_tool_fees(
    instrumented: Any, gateway_api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    body = _body(WEB_SEARCH)
    body["usage"]["cost"] = 0.5  # OpenRouter's own figure for the whole call
    fake.reply(Reply(body=body))
    gateway_api.call("responses.create", **ASK, tools=[{"type": "web_search"}])
    span = only_span(spans).attributes
    assert span[sc.COST_USD] == 0.5 and sc.TOOL_FEES_USD not in span
    assert [(p[sc.HOSTED_TOOL_PRICED], p["value"]) for p in _tool_points(reader)] == [("true", 1)]


def test_a_response_claiming_more_tool_runs_than_any_real_call_is_not_believed(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    runs = [{**WEB_SEARCH, "id": f"ws_{i}"} for i in range(hosted_tools.MAX_CALLS + 1)]
    response = _call(api, fake, False, *runs, tools=[{"type": "web_search"}])
    assert len(response.output) == hosted_tools.MAX_CALLS + 2  # the app gets the response as sent
    assert only_span(spans).attributes[sc.USAGE_REJECTED] == "tool_calls_out_of_range"
    assert total(reader, sc.COST) == 0 and points(reader, sc.HOSTED_TOOL_CALLS) == []
    assert total(reader, sc.USAGE_REJECTED_CALLS, otel_llm__rejected_reason="tool_calls_out_of_range") == 1


def test_tools_given_as_a_generator_reach_the_api_untouched(instrumented: Any, api: Api, fake: FakeAPI, spans: Any) -> None:
    _call(api, fake, False, WEB_SEARCH, tools=(tool for tool in [{"type": "web_search_preview"}]))
    assert fake.bodies[-1]["tools"] == [{"type": "web_search_preview"}]  # we did not consume the app's generator
    assert spans.get_finished_spans()[-1].attributes[sc.TOOL_FEES_USD] > 0


def test_hostile_output_items_neither_count_nor_cost_the_call_its_usage(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any,
) -> None:
    _call(api, fake, False)
    plain = spans.get_finished_spans()[-1].attributes[sc.COST_USD]
    hostile = [{"type": ["web_search_call"], "id": "x"}, {"type": 5}, {"type": {"web_search_call": 1}}, "web_search_call", 7]
    response = _call(api, fake, False, *hostile, tools=[{"type": "web_search"}])
    assert len(response.output) == len(hostile) + 1  # the app gets the response as sent
    span = spans.get_finished_spans()[-1].attributes
    assert span[sc.COST_USD] == pytest.approx(plain) and sc.TOOL_FEES_USD not in span and sc.UNMETERED not in span
    assert points(reader, sc.HOSTED_TOOL_CALLS) == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_fault_in_counting_the_tools_leaves_the_app_its_response(
    instrumented: Any, api: Api, fake: FakeAPI, spans: Any, reader: Any, monkeypatch: pytest.MonkeyPatch, stream: bool,
) -> None:
    expected = _call(api, fake, stream, WEB_SEARCH, tools=[{"type": "web_search"}])

    def broken(*_: Any) -> Any:
        raise RuntimeError("our bug")

    monkeypatch.setattr(hosted_tools, "count", broken)
    got = _call(api, fake, stream, WEB_SEARCH, tools=[{"type": "web_search"}])
    if stream:
        assert [e.model_dump() for e in got] == [e.model_dump() for e in expected]
    else:
        assert got.model_dump() == expected.model_dump()
    assert len(spans.get_finished_spans()) == 2 and total(reader, sc.CALLS) == 2


def test_a_prices_file_sets_the_fee_per_run_globally_and_per_base_url(
    instrument: Any, gateway_api: Api, api: Api, fake: FakeAPI, spans: Any, reader: Any, tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "hosted_tools: {code_interpreter: 0.03, web_search: 0.02}\n"
        "base_urls:\n"
        '  "https://gateway.example.com/v1":\n'
        "    hosted_tools: {web_search: 0.012}\n"
        "    models:\n"
        "      gpt-4.1: {input: 1.0, output: 4.0}\n")
    instrument(prices=str(prices))
    # The gateway: its own tokens' prices, its own web search fee, the file's code interpreter fee.
    _call(gateway_api, fake, False, WEB_SEARCH, CODE, tools=[{"type": "web_search"}])
    span = spans.get_finished_spans()[-1].attributes
    assert span[sc.TOOL_FEES_USD] == pytest.approx(0.012 + 0.03) and sc.HOSTED_TOOL_UNPRICED not in span
    # OpenAI's API: the file's global fee wins over the list's $0.010.
    _call(api, fake, False, WEB_SEARCH, tools=[{"type": "web_search"}])
    assert spans.get_finished_spans()[-1].attributes[sc.TOOL_FEES_USD] == pytest.approx(0.02)
    assert {p[sc.HOSTED_TOOL_PRICED] for p in _tool_points(reader)} == {"true"}
    assert _warnings(caplog) == []


@pytest.mark.parametrize(("text", "key", "says"), [
    ("hosted_tools: {web_serch: 0.01}\n", "hosted_tools.web_serch", "unknown hosted tool"),
    ("hosted_tools: {web_search: -0.01}\n", "hosted_tools.web_search", "from 0 to 100"),
    ("hosted_tools: {web_search: '1 cent'}\n", "hosted_tools.web_search", "got '1 cent'"),
    ("hosted_tools: {web_search: .inf}\n", "hosted_tools.web_search", "from 0 to 100"),
    ("hosted_tools: [web_search]\n", "hosted_tools", "expected a table of USD per run"),
    ('base_urls: {"http://g/v1": {hosted_tools: {file_search: true}}}\n', "base_urls.http://g/v1.hosted_tools.file_search",
     "got True"),
])
def test_a_wrong_tool_fee_is_the_one_line_error_naming_file_and_key(tmp_path: Any, text: str, key: str, says: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PricesFileError) as err:
        load_prices_file(path)
    assert err.value.key == key and says in err.value.problem and str(path) in str(err.value)
