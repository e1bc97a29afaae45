"""Collector configs (not runnable here): every component exists in the pinned contrib distribution,
pipelines reference defined components, memory_limiter comes first, message content is dropped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
CONFIGS = [REPO / "collector/otelcol.yaml", REPO / "deploy/agent/otelcol-agent.yaml",
           REPO / "deploy/gateway/otelcol-gateway.yaml"]
CONTRIB = yaml.safe_load((DATA / "otelcol-contrib-components-0.136.0.yaml").read_text())
KINDS = {"receivers": "receivers", "processors": "processors", "exporters": "exporters",
         "extensions": "extensions", "connectors": "connectors"}
# Config `type` -> Go module of the component, for every type our configs use. A new type must be
# added here (and so checked against the distribution's module list).
TYPE_TO_MODULE = {
    "receivers": {"otlp": "otlpreceiver"},
    "processors": {"memory_limiter": "memorylimiterprocessor", "batch": "batchprocessor",
                   "transform": "transformprocessor", "tail_sampling": "tailsamplingprocessor",
                   "resource": "resourceprocessor"},
    "exporters": {"otlp": "otlpexporter", "prometheusremotewrite": "prometheusremotewriteexporter",
                  "loadbalancing": "loadbalancingexporter"},
    "extensions": {"health_check": "healthcheckextension"},
}
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def test_manifest_data_names_its_source_and_version() -> None:
    assert CONTRIB["version"] == "0.136.0" and "otelcol-contrib/manifest.yaml" in CONTRIB["source"]
    assert "memorylimiterprocessor" in CONTRIB["processors"] and "tailsamplingprocessor" in CONTRIB["processors"]


def test_compose_pins_the_collector_version_the_data_describes() -> None:
    assert "otel/opentelemetry-collector-contrib:0.136.0" in (REPO / "compose.yaml").read_text()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_component_exists_in_the_contrib_distribution(path: Path) -> None:
    config = load(path)
    for kind in KINDS:
        for component_id in config.get(kind) or {}:
            ctype = component_type(component_id)
            module = TYPE_TO_MODULE.get(kind, {}).get(ctype)
            assert module, f"{path.name}: {kind}.{component_id}: unknown type {ctype!r} (add it to TYPE_TO_MODULE)"
            assert module in CONTRIB[kind], f"{path.name}: {module} is not in otelcol-contrib 0.136.0"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_pipelines_reference_defined_components_and_all_are_used(path: Path) -> None:
    config = load(path)
    service = config["service"]
    used: dict[str, set[str]] = {k: set() for k in ("receivers", "processors", "exporters")}
    for name, pipeline in service["pipelines"].items():
        for kind, seen in used.items():
            for component_id in pipeline.get(kind, []):
                assert component_id in (config.get(kind) or {}), f"{path.name}: {name}.{kind}: {component_id} undefined"
                seen.add(component_id)
    for kind, ids in used.items():
        assert set(config.get(kind) or {}) == ids, f"{path.name}: unused {kind}"
    assert set(service.get("extensions", [])) == set(config.get("extensions") or {})


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_memory_limiter_first_and_batch_last_in_every_pipeline(path: Path) -> None:
    for name, pipeline in load(path)["service"]["pipelines"].items():
        processors = [component_type(p) for p in pipeline["processors"]]
        assert processors[0] == "memory_limiter", f"{path.name}: {name}"
        assert processors[-1] == "batch", f"{path.name}: {name}"


@pytest.mark.parametrize("path", CONFIGS[:2], ids=lambda p: p.name)
def test_traces_drop_message_content_and_operator_listed_attributes(path: Path) -> None:
    config = load(path)
    pipeline = config["service"]["pipelines"]["traces"]
    redact = [p for p in pipeline["processors"] if component_type(p) == "transform"]
    assert redact, f"{path.name}: no redaction processor in the traces pipeline"
    groups = config["processors"][redact[0]]["trace_statements"]
    assert {g["context"] for g in groups} == {"span", "spanevent"}
    for group in groups:
        text = "\n".join(group["statements"])
        for key in CONTENT_KEYS:
            assert f'delete_key(attributes, "{key}")' in text
        assert "${env:OTEL_LLM_REDACT_ATTRIBUTES" in text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_endpoints_come_from_the_environment(path: Path) -> None:
    for exporter_id, exporter in load(path)["exporters"].items():
        endpoint = exporter.get("endpoint") or exporter.get("resolver", {}).get("dns", {}).get("hostname")
        assert endpoint and re.fullmatch(r"\$\{env:[A-Z_]+\}", endpoint), f"{path.name}: {exporter_id}"


def test_gateway_keeps_errors_rate_limits_and_expensive_calls() -> None:
    policies = load(REPO / "deploy/gateway/otelcol-gateway.yaml")["processors"]["tail_sampling"]["policies"]
    by_name = {p["name"]: p for p in policies}
    assert by_name["errors"]["status_code"]["status_codes"] == ["ERROR"]
    rate_limited = by_name["rate-limited"]["ottl_condition"]
    assert any("RateLimitError" in c for c in rate_limited["span"])
    assert any('"otel_llm.http.attempt_failed"' in c and '"429"' in c for c in rate_limited["spanevent"])
    assert 'attributes["otel_llm.cost.usd"] >' in by_name["expensive"]["ottl_condition"]["span"][0]


def test_agents_route_traces_by_trace_id() -> None:
    exporter = load(REPO / "deploy/agent/otelcol-agent.yaml")["exporters"]["loadbalancing"]
    assert exporter["routing_key"] == "traceID"


def test_gateway_keeps_slow_calls_and_waits_for_long_streams() -> None:
    """Issue 17.9: p95 exemplars point at slow calls, so slow traces must be kept; a decision taken
    15 s after the first span drops the rest of a stream that runs longer."""
    sampling = load(REPO / "deploy/gateway/otelcol-gateway.yaml")["processors"]["tail_sampling"]
    by_name = {p["name"]: p for p in sampling["policies"]}
    assert by_name["slow"]["type"] == "latency"
    threshold = str(by_name["slow"]["latency"]["threshold_ms"])
    assert threshold.endswith(":-10000}"), threshold  # the 10 s latency objective, overridable
    wait = str(sampling["decision_wait"])
    seconds = int(re.search(r"(\d+)s}?$", wait).group(1))  # type: ignore[union-attr]
    assert seconds >= 120, wait
    # Room for every trace that arrives while decisions wait (decision_wait x expected rate).
    assert sampling["num_traces"] >= seconds * sampling["expected_new_traces_per_sec"]


@pytest.mark.parametrize("path", [REPO / "collector/otelcol.yaml", REPO / "deploy/gateway/otelcol-gateway.yaml"],
                         ids=["single", "gateway"])
def test_metrics_carry_the_deployment_environment(path: Path) -> None:
    """Issue 17.8: staging and production spend told apart by a label on every otel_llm series."""
    config = load(path)
    metrics = config["service"]["pipelines"]["metrics"]["processors"]
    assert "transform/environment" in metrics
    statements = " ".join(s for block in config["processors"]["transform/environment"]["metric_statements"]
                          for s in block["statements"])
    assert 'attributes["deployment.environment.name"]' in statements
