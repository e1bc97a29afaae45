from __future__ import annotations

import pytest

from otel_llm.cli.doctor import Finding, format_findings, main, run_checks

GOOD_ENV = {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


def _problems(findings: list) -> list[str]:
    return [f.message for f in findings if f.level == "problem"]


def test_all_good() -> None:
    probes: list[tuple[str, int]] = []
    findings = run_checks(GOOD_ENV, {"otel-llm"}, {"otel_llm"}, lambda h, p: probes.append((h, p)) or True)
    assert _problems(findings) == []
    assert probes == [("collector", 4318), ("collector", 4318)]
    assert format_findings(findings, tty=False).endswith("no problems found")


def test_missing_entry_point_conflict_and_dead_endpoint() -> None:
    findings = run_checks({}, {"opentelemetry-instrumentation-openai-v2"}, set(), lambda h, p: False)
    problems = _problems(findings)
    assert any("entry point" in m for m in problems)
    assert any("opentelemetry-instrumentation-openai-v2 is installed" in m for m in problems)
    assert any("localhost:4317" in m for m in problems)


def test_conflict_disabled_and_content_capture_noted() -> None:
    env = {**GOOD_ENV, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai_v2",
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    findings = run_checks(env, {"opentelemetry-instrumentation-openai-v2"}, {"otel_llm"}, lambda h, p: True)
    assert _problems(findings) == []
    assert any(f.level == "info" and "content capture is ON" in f.message for f in findings)


def test_metrics_none_and_disabled_are_problems() -> None:
    env = {"OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none", "OTEL_LLM_ENABLED": "false"}
    problems = _problems(run_checks(env, set(), {"otel_llm"}, lambda h, p: True))
    assert len(problems) == 2


def test_prometheus_unpriced_models() -> None:
    def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
        if "unpriced" in promql:
            return [({"gen_ai_request_model": "my-finetune"}, 3.0)]
        if "unmetered" in promql or "hosted_tool" in promql:
            return []
        return [({}, 10.0)]

    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none"}
    findings = run_checks(env, set(), {"otel_llm"}, lambda h, p: True, "http://prom:9090", query, retention=_keeps_45_days)
    assert _problems(findings) == ["model 'my-finetune' has 3 unpriced calls: add it to the OTEL_LLM_PRICES file"]


def test_prometheus_down() -> None:
    def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
        raise OSError("connection refused")

    findings = run_checks({"OTEL_METRICS_EXPORTER": "prometheus"}, set(), {"otel_llm"}, lambda h, p: True,
                          "http://prom:9090", query, retention=_keeps_45_days)
    assert any("does not answer" in m for m in _problems(findings))


# The SDK checks (issue 15): each misconfiguration that makes `opentelemetry-instrument` record nothing.
ALL_COMPONENTS = {
    "opentelemetry_configurator": {"configurator"},
    "opentelemetry_traces_exporter": {"console", "otlp", "otlp_proto_grpc", "otlp_proto_http"},
    "opentelemetry_metrics_exporter": {"console", "otlp", "otlp_proto_grpc", "otlp_proto_http", "prometheus"},
    "opentelemetry_logs_exporter": {"console", "otlp", "otlp_proto_grpc", "otlp_proto_http"},
}
HTTP_ONLY = {group: names - {"otlp_proto_grpc"} for group, names in ALL_COMPONENTS.items()}
SDK = {"opentelemetry-sdk"}
NAMED = {"OTEL_SERVICE_NAME": "support-bot"}


def _sdk_problems(env: dict[str, str], distributions: set[str] = SDK, components: dict = ALL_COMPONENTS) -> list[str]:
    return _problems(run_checks(env, distributions, {"otel_llm"}, lambda h, p: True, components=components))


def test_all_good_with_the_sdk_installed() -> None:
    findings = run_checks({**GOOD_ENV, **NAMED}, SDK, {"otel_llm"}, lambda h, p: True, components=ALL_COMPONENTS)
    assert _problems(findings) == []
    assert any(f.level == "ok" and "SDK" in f.message and "support-bot" in f.message for f in findings)


def test_default_grpc_protocol_without_the_grpc_exporter_is_a_problem() -> None:
    # The README's old Quick start: only the HTTP exporter installed, protocol left at its gRPC default.
    problems = _sdk_problems({**NAMED, "OTEL_METRICS_EXPORTER": "prometheus"}, components=HTTP_ONLY)
    assert problems == [
        "OTEL_TRACES_EXPORTER=otlp over grpc needs the otlp_proto_grpc exporter, which is not installed: the SDK "
        "does not start and nothing is recorded; pip install opentelemetry-exporter-otlp-proto-grpc",
        "OTEL_LOGS_EXPORTER=otlp over grpc needs the otlp_proto_grpc exporter, which is not installed: the SDK "
        "does not start and nothing is recorded; pip install opentelemetry-exporter-otlp-proto-grpc",
    ]
    http = {**NAMED, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRICS_EXPORTER": "prometheus"}
    assert _sdk_problems(http, components=HTTP_ONLY) == []


def test_prometheus_exporter_missing_and_bad_protocol() -> None:
    no_prometheus = {**ALL_COMPONENTS, "opentelemetry_metrics_exporter": {"otlp", "otlp_proto_grpc"}}
    problems = _sdk_problems({**NAMED, "OTEL_METRICS_EXPORTER": "prometheus"}, components=no_prometheus)
    assert problems == ["OTEL_METRICS_EXPORTER=prometheus needs the prometheus exporter, which is not installed: "
                        "the SDK does not start and nothing is recorded; pip install opentelemetry-exporter-prometheus"]
    problems = _sdk_problems({**NAMED, "OTEL_EXPORTER_OTLP_PROTOCOL": "http"})
    assert len(problems) == 3 and all("OTLP protocol 'http' is not one the SDK knows" in m for m in problems)


def test_sdk_not_installed_or_not_configured() -> None:
    assert _sdk_problems(NAMED, distributions=set()) == [
        "the OpenTelemetry SDK is not installed: otel_llm records into the API's no-op providers and nothing is "
        "exported; pip install 'otel-llm[cli]' (or set the SDK up in the app)"]
    no_configurator = {**ALL_COMPONENTS, "opentelemetry_configurator": set()}
    (problem,) = _sdk_problems(NAMED, components=no_configurator)
    assert problem.startswith("no OpenTelemetry configurator is installed")


def test_service_name_unset_is_a_problem_unless_given_as_a_resource_attribute() -> None:
    (problem,) = _sdk_problems({})
    assert problem.startswith("OTEL_SERVICE_NAME is not set: the app's telemetry is labelled unknown_service")
    assert _sdk_problems({"OTEL_RESOURCE_ATTRIBUTES": "service.name=bot,deployment.environment=prod"}) == []


def _with_unmetered(labels: dict[str, str], calls: float) -> list[Finding]:
    """The findings against a Prometheus whose only problem is `calls` unmetered calls of `labels`."""
    def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
        if "unmetered" in promql:
            return [(labels, calls)]
        if "unpriced" in promql or "hosted_tool" in promql:
            return []
        return [({}, 10.0)]

    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none"}
    return list(run_checks(env, set(), {"otel_llm"}, lambda h, p: True, "http://prom:9090", query,
                           retention=_keeps_45_days))


def test_prometheus_unmetered_calls_name_the_setting_that_fixes_them() -> None:
    findings = _with_unmetered({"gen_ai_request_model": "llama-3.1-70b", "server_address": "gateway.internal"}, 7.0)
    assert _problems(findings) == [
        "model 'llama-3.1-70b' at gateway.internal has 7 unmetered calls (no usage at all, so no tokens and no "
        "cost): for streams set OTEL_LLM_INCLUDE_STREAM_USAGE=always or name that host in it; a gateway that "
        "strips usage must pass it through"]
    assert not format_findings(findings, tty=False).endswith("no problems found")


def test_prometheus_unmetered_images_and_audio_say_they_are_not_priced_not_how_to_ask_for_usage() -> None:
    findings = _with_unmetered({"gen_ai_request_model": "dall-e-3", "server_address": "api.openai.com",
                                "gen_ai_operation_name": "image_generation"}, 4.0)
    assert _problems(findings) == [
        "model 'dall-e-3' at api.openai.com has 4 unmetered calls (image_generation, billed per image, character "
        "or minute with no token usage: otel_llm does not price them, so their cost is in no figure; "
        "`otel-llm reconcile` compares with the bill)"]


def test_prometheus_hosted_tool_runs_without_their_fee_are_a_problem_naming_the_tool() -> None:
    asked: list[str] = []

    def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
        asked.append(promql)
        if "hosted_tool" in promql:
            return [({"gen_ai_request_model": "gpt-4.1", "server_address": "api.openai.com",
                      "otel_llm_hosted_tool": "code_interpreter"}, 3.0)]
        return [] if "unpriced" in promql or "unmetered" in promql else [({}, 10.0)]

    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none"}
    findings = run_checks(env, set(), {"otel_llm"}, lambda h, p: True, "http://prom:9090", query,
                          retention=_keeps_45_days)
    assert _problems(findings) == [
        "model 'gpt-4.1' at api.openai.com ran the hosted code_interpreter tool 3 times without its fee in the cost "
        "(otel_llm prices web and file search at OpenAI's list fee on calls priced at OpenAI's list; code interpreter "
        "and image generation are billed by measures a call does not carry): set a fee per run under `hosted_tools:` in "
        "the OTEL_LLM_PRICES file"]
    assert any('otel_llm_hosted_tool_priced="false"' in q for q in asked)


def test_help_lists_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "in the order a user would:" in out
    for number in range(1, 7):
        assert f"\n{number}. " in out, number
    assert "Exit 0 when all is well, 1 when a problem was found." in out


def _keeps_45_days(url: str) -> str:
    return "45d"


def _seen(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    return [] if "unpriced" in promql or "unmetered" in promql or "hosted_tool" in promql else [({}, 10.0)]


@pytest.mark.parametrize(("setting", "level", "says"), [
    ("15d", "problem", "Prometheus keeps samples for 15d: a report's month to date reaches back up to 31 days"),
    ("15d or 10GiB", "problem", "Prometheus keeps samples for 15d or 10GiB"),
    ("45d", "ok", "Prometheus keeps samples for 45d, longer than a month to date"),
    ("10GiB", "info", "Prometheus keeps samples up to a size (10GiB)"),
    (None, "info", "Prometheus does not say how long it keeps samples"),
])
def test_prometheus_that_forgets_before_a_month_is_a_problem(setting: str | None, level: str, says: str) -> None:
    """Its default, 15 days: after the 15th, the report's month to date cannot be exact."""
    findings = run_checks({"OTEL_METRICS_EXPORTER": "prometheus"}, set(), {"otel_llm"}, lambda h, p: True,
                          "http://prom:9090", _seen, retention=lambda url: setting)
    (found,) = [f for f in findings if "keeps samples" in f.message or "how long it keeps" in f.message]
    assert found.level == level and found.message.startswith(says), found
    if level == "problem":
        assert "--storage.tsdb.retention.time=45d" in found.message
