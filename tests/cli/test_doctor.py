from __future__ import annotations

from otel_llm.cli.doctor import format_findings, run_checks

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
        return [({}, 10.0)]

    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none"}
    findings = run_checks(env, set(), {"otel_llm"}, lambda h, p: True, "http://prom:9090", query)
    assert _problems(findings) == ["model 'my-finetune' has 3 unpriced calls: add it to the OTEL_LLM_PRICES file"]


def test_prometheus_down() -> None:
    def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
        raise OSError("connection refused")

    findings = run_checks({"OTEL_METRICS_EXPORTER": "prometheus"}, set(), {"otel_llm"}, lambda h, p: True,
                          "http://prom:9090", query)
    assert any("does not answer" in m for m in _problems(findings))
