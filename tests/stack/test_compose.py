"""compose.yaml against the compose-spec JSON schema, plus the stack's own rules for it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
# Vendored from the docker-compose 1.29.2 wheel (compose/config/compose_spec.json, Apache-2.0,
# see compose-spec.LICENSE). It declares draft 2019-09.
SCHEMA = json.loads((DATA / "compose-spec.schema.json").read_text())
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())


def validate(document: Any) -> None:
    jsonschema.Draft201909Validator(SCHEMA).validate(document)


def test_compose_matches_the_compose_spec_schema() -> None:
    validate(COMPOSE)


def test_the_schema_rejects_a_broken_compose_file() -> None:
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["grafana"]["portz"] = ["3000:3000"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_images_are_pinned() -> None:
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*", image), f"{name}: {image} is not pinned"


def test_grafana_has_no_default_admin_password() -> None:
    env = COMPOSE["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_SECURITY_ADMIN_PASSWORD:?")


def test_prometheus_receives_remote_write_and_stores_exemplars() -> None:
    command = COMPOSE["services"]["prometheus"]["command"]
    assert "--web.enable-remote-write-receiver" in command
    assert "--enable-feature=exemplar-storage" in command


def test_ports_bind_to_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_mounted_files_exist() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source}"


def test_alertmanager_starts_only_after_its_config_is_rendered() -> None:
    depends = COMPOSE["services"]["alertmanager"]["depends_on"]
    assert depends["alertmanager-config"]["condition"] == "service_completed_successfully"


def test_tempo_receives_otlp_and_generates_metrics_into_prometheus() -> None:
    tempo = yaml.safe_load((REPO / "tempo/tempo.yaml").read_text())
    assert set(tempo["distributor"]["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert tempo["metrics_generator"]["storage"]["remote_write"][0]["url"] == "http://prometheus:9090/api/v1/write"
    assert "span-metrics" in tempo["overrides"]["defaults"]["metrics_generator"]["processors"]


def test_prometheus_and_alertmanager_have_external_urls() -> None:
    """Issue 17.10: links in notifications (generatorURL, silences) must open from outside."""
    services = COMPOSE["services"]
    for name, variable in (("prometheus", "PROMETHEUS_EXTERNAL_URL"), ("alertmanager", "ALERTMANAGER_EXTERNAL_URL")):
        flags = [c for c in services[name]["command"] if c.startswith("--web.external-url=")]
        assert flags == [f"--web.external-url=${{{variable}:-http://localhost:{9090 if name == 'prometheus' else 9093}}}"]


def test_every_alertmanager_variable_reaches_the_render() -> None:
    template = (REPO / "alertmanager/alertmanager.yml.tmpl").read_text()
    used = set(re.findall(r"^# if ([A-Z_]+)$", template, flags=re.MULTILINE))
    env = COMPOSE["services"]["alertmanager-config"]["environment"]
    assert used <= set(env), used - set(env)
