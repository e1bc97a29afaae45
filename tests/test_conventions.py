"""The GenAI conventions modes: the default output is exactly today's, and the opt-in modes emit only
names that the conventions' own registry files define (v1.41.0: the Python package; latest: the
files of open-telemetry/semantic-conventions-genai vendored under tests/data/semconv-genai/)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import openai
import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from otel_llm import conventions as cv
from otel_llm import semconv as sc
from otel_llm.pricing import Usage
from otel_llm.settings import load_settings
from tests.conftest import Api, FakeAPI, Reply, collect, finished

DATA = Path(__file__).parent / "data" / "semconv-genai"
PIN = DATA / sc.GENAI_PINNED_COMMIT
TOKEN_METRICS_COMMIT = "9b2ce3b4e6b351a44025a289eefc1a6f6108a938"  # token-metrics.yaml as the pin documents it
GOLDEN = DATA / "golden-v1_41.json"
MESSAGES = [{"role": "user", "content": "Say this is a test"}]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


REGISTRY = {a["key"]: a for a in _yaml(PIN / "model/gen-ai/registry.yaml")["attributes"]}
METRICS = {
    m["name"]: m
    for path in (PIN / "model/gen-ai/metrics.yaml", DATA / TOKEN_METRICS_COMMIT / "model/gen-ai/token-metrics.yaml")
    for m in _yaml(path)["metrics"]
}
DRAFT = (DATA / sc.GENAI_COST_DRAFT_COMMIT / "changelog.d/443.enhancement.md").read_text(encoding="utf-8")
DRAFT_NAMES = frozenset(re.findall(r"`(gen_ai\.[a-z_.]+)`", DRAFT))
PACKAGE_NAMES = frozenset(
    getattr(module, name) for module in (gen_ai_attributes, gen_ai_metrics) for name in dir(module) if name.isupper()
)
# Names of other conventions (server, error, http, user, session, openai) are not the GenAI
# repository's: the same in every mode, checked against the Python package by test_loading.
NOT_GENAI = ("server.", "error.", "http.", "user.", "session.", "openai.", "exception.")

LATEST_METRICS = {
    "gen_ai.client.operation.duration": ("histogram", "s"),
    "gen_ai.client.inference.duration": ("histogram", "s"),
    "gen_ai.client.inference.time_to_first_chunk": ("histogram", "s"),
    "gen_ai.client.inference.usage.input_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.output_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.cache_read.input_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.cache_write.input_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.reasoning.output_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.operation.input_tokens": ("histogram", "{token}"),
    "gen_ai.client.inference.operation.output_tokens": ("histogram", "{token}"),
}
V1_41_METRICS = {
    "gen_ai.client.operation.duration": ("histogram", "s"),
    "gen_ai.client.token.usage": ("histogram", "{token}"),
    "gen_ai.client.operation.time_to_first_chunk": ("histogram", "s"),
}


# --- the default output, captured from main before the modes existed -------------------------
def run_scenario(fake: FakeAPI) -> None:
    """A chat call, a stream with usage, an embedding and a rate-limited chat, through the real SDK."""
    api = Api("sync", fake, "https://api.openai.com/v1")
    try:
        api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
        stream = api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True,
                          stream_options={"include_usage": True})
        api.consume(stream)
        api.call("embeddings.create", model="text-embedding-3-small", input="hello")
        fake.reply(Reply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}))
        with pytest.raises(openai.RateLimitError):
            api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
    finally:
        api.close()


def shape(spans: Any, reader: InMemoryMetricReader) -> dict[str, Any]:
    """The names a user's backend sees: span names with their attribute and event names, and each
    metric with the attribute-name sets of its points."""
    out_spans = [
        {"name": s.name, "attributes": sorted(s.attributes or {}), "events": [e.name for e in s.events]}
        for s in finished(spans)
    ]
    metrics = {
        name: sorted({tuple(sorted(p.attributes)) for p in pts})
        for name, pts in collect(reader).items()
    }
    return {"spans": out_spans, "metrics": {k: [list(t) for t in v] for k, v in sorted(metrics.items())}}


# Our own metrics added since the golden was captured, by design: the process start time that lets the
# exact-spend rules tell a restart from a metrics gap (issue 17), and the cost rolled up per process by
# budget scope and by model that those rules delta instead of every cost series (issue 20). Nothing else may change.
ADDED_SINCE_GOLDEN: Final = {
    sc.PROCESS_START_TIME: [[]],
    sc.COST_BY_SCOPE: [[sc.API_KEY_FINGERPRINT, sc.TEAM, sc.USER_ID]],
    sc.COST_BY_MODEL: [[sc.GEN_AI_REQUEST_MODEL, sc.SERVER_ADDRESS]],
}


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_default_output_is_the_same_name_set_as_before(instrument: Any, spans: Any, reader: Any, fake: FakeAPI) -> None:
    instrument()
    run_scenario(fake)
    got = shape(spans, reader)
    if os.environ.get("OTEL_LLM_WRITE_GOLDEN") == "1":  # capture from main, once, by hand
        GOLDEN.write_text(json.dumps({"captured_from": os.environ.get("GOLDEN_COMMIT", "?"), **got}, indent=1) + "\n")
    golden = _golden()
    assert got["spans"] == golden["spans"]
    assert got["metrics"] == golden["metrics"] | ADDED_SINCE_GOLDEN


def test_default_mode_is_v1_41_and_its_names_are_the_python_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cv.OPT_IN_VARIABLE, raising=False)
    assert load_settings().semconv_mode == cv.V1_41
    golden = _golden()
    emitted = {k for s in golden["spans"] for k in s["attributes"]} | set(golden["metrics"])
    emitted |= {k for sets in golden["metrics"].values() for keys in sets for k in keys}
    genai = {n for n in emitted if n.startswith("gen_ai.")}
    assert genai and genai <= PACKAGE_NAMES, genai - PACKAGE_NAMES


# --- the plan in v1_41 reproduces today's metrics exactly ---------------------------------------
def _std(operation: str, model: str, response_model: str) -> dict[str, Any]:
    return {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.SERVER_ADDRESS: "api.openai.com",
        sc.SERVER_PORT: 443,
        sc.GEN_AI_RESPONSE_MODEL: response_model,
    }


# The golden scenario's calls as the recorder sees them at metric time.
SCENARIO = [
    (cv.Outcome("chat", 0.2, None, Usage(1200, 300, 1024, 0, 100), None), _std("chat", "gpt-4.1", "gpt-4.1-2025-04-14")),
    (cv.Outcome("chat", 0.3, 0.1, Usage(40, 51), None), _std("chat", "gpt-4.1", "gpt-4.1-2025-04-14")),
    (cv.Outcome("embeddings", 0.1, None, Usage(8, 0), None),
     _std("embeddings", "text-embedding-3-small", "text-embedding-3-small")),
    (cv.Outcome("chat", 0.05, None, None, "RateLimitError"), _std("chat", "gpt-4.1", "gpt-4.1")),
]


@pytest.fixture
def meter_reader() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def _record_scenario(mode: cv.Mode, meter_reader: tuple[MeterProvider, InMemoryMetricReader]) -> dict[str, list[Any]]:
    provider, reader = meter_reader
    standard = cv.StandardMetrics(provider.get_meter("otel_llm"), mode)
    for outcome, std in SCENARIO:
        standard.record(outcome, std)
    return collect(reader)


def test_v1_41_plan_records_what_the_recorder_records_today(meter_reader: Any) -> None:
    got = _record_scenario(cv.V1_41, meter_reader)
    golden = {k: v for k, v in _golden()["metrics"].items() if k.startswith("gen_ai.")}
    assert {name: [list(t) for t in sorted({tuple(sorted(p.attributes)) for p in pts})] for name, pts in got.items()} == golden
    assert {s.name: (s.kind, s.unit) for s in cv.instrument_specs(cv.V1_41)} == V1_41_METRICS


# --- every latest name is the pinned conventions' ----------------------------------------------
def test_latest_instruments_are_the_pinned_metrics_with_their_kind_and_unit() -> None:
    specs = {s.name: (s.kind, s.unit) for s in cv.instrument_specs(cv.LATEST)}
    assert specs == LATEST_METRICS
    for name, (kind, unit) in specs.items():
        assert METRICS[name]["instrument"] == kind and METRICS[name]["unit"] == unit, name
    both = [s.name for s in cv.instrument_specs(cv.BOTH)]
    assert len(both) == len(set(both)) and set(both) == set(LATEST_METRICS) | set(V1_41_METRICS)


def test_the_renamed_and_removed_v1_41_names_are_gone_from_the_pinned_registry() -> None:
    assert sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in REGISTRY
    assert sc.GEN_AI_TOKEN_TYPE not in REGISTRY
    assert sc.GEN_AI_CLIENT_TOKEN_USAGE not in METRICS
    assert sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK not in METRICS
    assert "inference" in METRICS[sc.GEN_AI_CLIENT_OPERATION_DURATION]["note"]  # kept, but not for inference


def test_every_name_in_the_latest_block_of_semconv_is_in_the_pinned_files_or_the_draft() -> None:
    block = {v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str) and v.startswith("gen_ai.")
             and v not in PACKAGE_NAMES}
    assert block, "the latest block defines names"
    for name in block:
        assert name in REGISTRY or name in METRICS or name in DRAFT_NAMES, name
    assert {sc.GEN_AI_USAGE_COST_AMOUNT, sc.GEN_AI_USAGE_COST_CURRENCY, sc.GEN_AI_USAGE_COST_SOURCE} <= DRAFT_NAMES
    assert not DRAFT_NAMES & set(REGISTRY), "the cost attributes were merged: move them out of the draft block"
    modalities = {m["value"] for m in REGISTRY[sc.GEN_AI_TOKEN_MODALITY]["type"]["members"]}
    assert {sc.MODALITY_AUDIO, sc.MODALITY_UNKNOWN} <= modalities
    assert "`provider`" in DRAFT and "`local`" in DRAFT


# --- span attributes -----------------------------------------------------------------------------
V1_41_SPAN = {
    sc.GEN_AI_OPERATION_NAME: "chat",
    sc.GEN_AI_RESPONSE_MODEL: "gpt-4.1-2025-04-14",
    sc.GEN_AI_USAGE_INPUT_TOKENS: 1200,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1024,
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 64,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 100,
    sc.SERVER_ADDRESS: "api.openai.com",
    sc.COST_USD: 0.0031,
    sc.PRICE_SOURCE: "genai-prices:openai/gpt-4.1",
}
AUDIO = Usage(1200, 300, 1024, 64, 100, input_audio=200, output_audio=50)


def test_v1_41_span_attributes_are_the_very_same_dict() -> None:
    attrs = dict(V1_41_SPAN)
    assert cv.span_attributes(cv.V1_41, attrs, AUDIO) is attrs
    assert attrs == V1_41_SPAN


def test_latest_span_attributes_rename_cache_creation_and_add_audio_and_the_draft_cost() -> None:
    got = cv.span_attributes(cv.LATEST, dict(V1_41_SPAN), AUDIO)
    expected = {k: v for k, v in V1_41_SPAN.items() if k != sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS}
    assert got == {
        **expected,
        "gen_ai.usage.cache_write.input_tokens": 64,
        "gen_ai.usage.audio.input_tokens": 200,
        "gen_ai.usage.audio.output_tokens": 50,
        "gen_ai.usage.cost.amount": 0.0031,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
    }
    for name in got:
        assert name.startswith(NOT_GENAI) or name.startswith("otel_llm.") or name in REGISTRY or name in DRAFT_NAMES, name


def test_both_span_attributes_keep_the_v1_41_names_beside_the_latest() -> None:
    got = cv.span_attributes(cv.BOTH, dict(V1_41_SPAN), None)
    assert got == {
        **V1_41_SPAN,
        "gen_ai.usage.cache_write.input_tokens": 64,
        "gen_ai.usage.cost.amount": 0.0031,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
    }


def test_cost_source_is_provider_when_the_provider_reported_the_cost_and_absent_without_a_cost() -> None:
    provided = cv.span_attributes(cv.LATEST, {sc.COST_USD: 0.5, sc.PRICE_SOURCE: "provider"})
    assert provided[sc.GEN_AI_USAGE_COST_SOURCE] == "provider"
    unpriced = cv.span_attributes(cv.LATEST, {sc.GEN_AI_USAGE_INPUT_TOKENS: 5, sc.UNPRICED: True})
    assert unpriced == {sc.GEN_AI_USAGE_INPUT_TOKENS: 5, sc.UNPRICED: True}


# --- metrics in the opt-in modes, through the real SDK -------------------------------------------
def _sums(points: dict[str, list[Any]]) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    """metric name + the attributes beyond the standard set -> sum (counter value or histogram sum)."""
    std_keys = set(_std("chat", "m", "r"))
    out: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    for name, pts in points.items():
        for p in pts:
            extra = tuple(sorted((k, v) for k, v in p.attributes.items() if k not in std_keys or k == sc.GEN_AI_OPERATION_NAME))
            out[(name, extra)] = out.get((name, extra), 0) + (p.value if hasattr(p, "value") else p.sum)
    return out


def test_latest_metrics_follow_the_pinned_conventions(meter_reader: Any) -> None:
    got = _sums(_record_scenario(cv.LATEST, meter_reader))
    op = sc.GEN_AI_OPERATION_NAME
    chat, emb = ((op, "chat"),), ((op, "embeddings"),)
    unknown = (("gen_ai.token.modality", "unknown"),)
    err = (("error.type", "RateLimitError"),)
    assert got == {
        ("gen_ai.client.inference.duration", chat): pytest.approx(0.5),
        ("gen_ai.client.inference.duration", tuple(sorted(err + chat))): pytest.approx(0.05),
        ("gen_ai.client.operation.duration", emb): pytest.approx(0.1),  # embeddings are not inference
        ("gen_ai.client.inference.time_to_first_chunk", chat): pytest.approx(0.1),
        ("gen_ai.client.inference.usage.input_tokens", tuple(sorted(chat + unknown))): 1240,
        ("gen_ai.client.inference.usage.output_tokens", tuple(sorted(chat + unknown))): 351,
        ("gen_ai.client.inference.usage.cache_read.input_tokens", tuple(sorted(chat + unknown))): 1024,
        ("gen_ai.client.inference.usage.cache_write.input_tokens", tuple(sorted(chat + unknown))): 0,
        ("gen_ai.client.inference.usage.reasoning.output_tokens", tuple(sorted(chat + unknown))): 100,
        ("gen_ai.client.inference.operation.input_tokens", chat): 1240,
        ("gen_ai.client.inference.operation.output_tokens", chat): 351,
        # the failed call reported no usage: no token sample (tokens unknown, not 0)
    }
    for (name, extra), _ in got.items():
        allowed = _allowed_extras(METRICS[name])
        assert {k for k, _ in extra if k != op} <= allowed, (name, extra, allowed)


# What each attribute group of the pinned files adds beyond the standard set (operation, provider,
# models, server): checked so that a record never carries an attribute its metric does not define.
_GROUP_EXTRAS = {
    "attributes.gen_ai.error": {"error.type"},
    "metric_attributes.gen_ai.inference_usage": {"gen_ai.token.modality"},
    "metric_attributes.gen_ai": set(),
}


def _allowed_extras(metric: dict[str, Any]) -> set[str]:
    allowed: set[str] = set()
    for attr in metric["attributes"]:
        if "ref_group" in attr:
            allowed |= _GROUP_EXTRAS[attr["ref_group"]]
        elif attr["ref"] not in _std("chat", "m", "r"):
            allowed.add(attr["ref"])
    return allowed


def test_both_metrics_are_v1_41_plus_latest_without_counting_a_duration_twice(meter_reader: Any) -> None:
    points = _record_scenario(cv.BOTH, meter_reader)
    assert set(points) == set(V1_41_METRICS) | set(LATEST_METRICS)
    durations = points["gen_ai.client.operation.duration"]
    assert sum(p.count for p in durations) == len(SCENARIO)  # once per call, as in v1.41.0
    assert sum(p.count for p in points["gen_ai.client.inference.duration"]) == 3


def test_audio_is_its_own_modality_and_the_parts_add_up() -> None:
    records = cv.metric_records(cv.LATEST, cv.Outcome("chat", 1.0, None, AUDIO, None))
    inputs = {dict(r.extra)["gen_ai.token.modality"]: r.value for r in records
              if r.instrument == sc.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS}
    outputs = {dict(r.extra)["gen_ai.token.modality"]: r.value for r in records
               if r.instrument == sc.GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS}
    assert inputs == {"audio": 200, "unknown": 1000} and outputs == {"audio": 50, "unknown": 250}


def test_a_success_without_usage_and_a_response_cache_hit_record_no_tokens() -> None:
    for outcome in (cv.Outcome("chat", 1.0, 0.2, None, None), cv.Outcome("chat", 1.0, None, Usage(10, 5), None, False)):
        for mode in cv.MODES:
            names = {r.instrument for r in cv.metric_records(mode, outcome)}
            assert not any("token" in n for n in names), (mode, outcome, names)


# --- the mode switch -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("gen_ai_latest_experimental", cv.LATEST),
        ("http, gen_ai_latest_experimental ,database", cv.LATEST),
        ("gen_ai_latest_experimental/dup", cv.BOTH),
        ("gen_ai_latest_experimental,gen_ai_latest_experimental/dup", cv.BOTH),
        ("http/dup", cv.V1_41),
        ("", cv.V1_41),
    ],
)
def test_the_standard_opt_in_variable_picks_the_mode(value: str, mode: str) -> None:
    assert load_settings({cv.OPT_IN_VARIABLE: value}).semconv_mode == mode
    assert load_settings({}, semconv_mode=value).semconv_mode == mode  # a keyword, through the same parser
    assert cv.parse_mode(value) == mode


def test_a_misspelt_genai_value_warns_once_naming_it_and_keeps_v1_41(caplog: pytest.LogCaptureFixture) -> None:
    assert load_settings({cv.OPT_IN_VARIABLE: "http,gen_ai_latest"}).semconv_mode == cv.V1_41
    (record,) = [r for r in caplog.records if r.name == "otel_llm" and r.levelno == logging.WARNING]
    assert cv.OPT_IN_VARIABLE in record.getMessage() and "gen_ai_latest" in record.getMessage()
    assert cv.parse_mode("latest") == cv.LATEST and cv.parse_mode("both") == cv.BOTH
    with pytest.raises(ValueError, match="gen_ai_lastest"):
        cv.parse_mode("gen_ai_lastest")


def test_schema_url_is_v1_41_only_in_the_default_mode() -> None:
    assert cv.schema_url(cv.V1_41) == sc.SCHEMA_URL
    assert cv.schema_url(cv.LATEST) is None and cv.schema_url(cv.BOTH) is None


# --- queries that read either name (for the rules and dashboards), run by the real promtool --------
PROMQL_P95 = (
    "histogram_quantile(0.95, sum by (le, gen_ai_provider_name, gen_ai_request_model) ("
    "rate(gen_ai_client_operation_duration_seconds_bucket[5m]) "
    "or rate(gen_ai_client_inference_duration_seconds_bucket[5m])))"
)


def _series(name: str, op: str, buckets: dict[str, int], step: int) -> list[dict[str, str]]:
    return [
        {"series": f'{name}{{gen_ai_operation_name="{op}",gen_ai_provider_name="openai",'
                   f'gen_ai_request_model="gpt-4.1",le="{le}"}}', "values": f"0+{n * step}x10"}
        for le, n in buckets.items()
    ]


@pytest.mark.parametrize("mode", cv.MODES)
def test_the_either_name_p95_query_gives_the_same_answer_in_every_mode(mode: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is installed by scripts/install-tools")
    buckets = {"1.28": 9, "2.56": 10, "+Inf": 10}  # 90% under 1.28 s, all under 2.56 s
    old, new = "gen_ai_client_operation_duration_seconds_bucket", "gen_ai_client_inference_duration_seconds_bucket"
    series = {"v1_41": _series(old, "chat", buckets, 1), "latest": _series(new, "chat", buckets, 1),
              "both": _series(old, "chat", buckets, 1) + _series(new, "chat", buckets, 1)}[mode]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "provider_model:gen_ai_client_operation_duration_seconds:p95_rate5m", "expr": PROMQL_P95}]}]}))
    expected = "provider_model:gen_ai_client_operation_duration_seconds:p95_rate5m"
    labels = f'{expected}{{gen_ai_provider_name="openai",gen_ai_request_model="gpt-4.1"}}'
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": [
            {"expr": expected, "eval_time": "9m", "exp_samples": [{"labels": labels, "value": 1.92}]}]}],
    }))
    run = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


# --- end to end through the real SDK and the recorder -------------------------------------------
_DRAFT_COST = {sc.GEN_AI_USAGE_COST_AMOUNT, sc.GEN_AI_USAGE_COST_CURRENCY, sc.GEN_AI_USAGE_COST_SOURCE}


@pytest.mark.parametrize("value", ["gen_ai_latest_experimental", "gen_ai_latest_experimental/dup"])
def test_opt_in_modes_end_to_end(value: str, monkeypatch: pytest.MonkeyPatch, instrument: Any, spans: Any,
                                 reader: Any, fake: FakeAPI) -> None:
    monkeypatch.setenv(cv.OPT_IN_VARIABLE, value)
    instrument()
    run_scenario(fake)
    got, golden = shape(spans, reader), _golden()
    ours = {k: v for k, v in golden["metrics"].items() if not k.startswith("gen_ai.")} | ADDED_SINCE_GOLDEN
    assert {k: v for k, v in got["metrics"].items() if not k.startswith("gen_ai.")} == ours  # untouched
    standard = {k for k in got["metrics"] if k.startswith("gen_ai.")}
    if value.endswith("/dup"):
        assert standard == set(V1_41_METRICS) | set(LATEST_METRICS)
    else:
        assert standard == set(LATEST_METRICS)
        for name in standard:  # (our otel_llm.tokens keeps its gen_ai.token.type label: ours stay as they are)
            keys = {k for ks in got["metrics"][name] for k in ks}
            assert all(k in REGISTRY or k.startswith(NOT_GENAI) for k in keys), name
    for old, new in zip(golden["spans"], got["spans"], strict=True):
        added = set(new["attributes"]) - set(old["attributes"])
        expected = _DRAFT_COST if sc.COST_USD in old["attributes"] else set()
        assert added == expected and set(old["attributes"]) <= set(new["attributes"]), new["name"]


def test_a_fault_in_the_conventions_layer_leaves_the_app_unharmed(monkeypatch: pytest.MonkeyPatch, instrument: Any,
                                                                  fake: FakeAPI, reader: Any) -> None:
    hit: list[str] = []

    def boom(*args: Any, **kwargs: Any) -> Any:
        hit.append("boom")
        raise RuntimeError("a bug of ours in conventions.py")

    monkeypatch.setenv(cv.OPT_IN_VARIABLE, "gen_ai_latest_experimental")
    monkeypatch.setattr(cv, "span_attributes", boom)
    monkeypatch.setattr(cv.StandardMetrics, "record", boom)
    instrument()
    api = Api("sync", fake, "https://api.openai.com/v1")
    try:
        result = api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES)
        chunks = api.consume(api.call("chat.completions.create", model="gpt-4.1", messages=MESSAGES, stream=True))
    finally:
        api.close()
    assert type(result) is openai.types.chat.ChatCompletion and result.id == "chatcmpl-abc123"
    assert chunks and chunks[0].id == "chatcmpl-stream1"
    assert hit  # the fault was on the call's path


def test_every_other_v1_41_genai_attribute_is_kept_by_the_pinned_registry() -> None:
    """Why the latest mode renames one span attribute and removes none: the rest are all still defined."""
    v1_41 = {v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str) and v in PACKAGE_NAMES
             and v.startswith("gen_ai.") and not v.startswith("gen_ai.client.")}
    gone = {v for v in v1_41 if v not in REGISTRY}
    assert gone == {sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, sc.GEN_AI_TOKEN_TYPE}
