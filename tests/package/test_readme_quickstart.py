"""The README's Quick start, run as written (its block extracted from README.md) in a fresh venv
against the simulator: spans come out and the cost counter is on the app's /metrics."""

from __future__ import annotations

import json
import socket
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from otel_llm.simulator import Simulator, SimulatorConfig

from .helpers import clean_env, copy_checkout, fresh_venv, readme_blocks

pytestmark = pytest.mark.package

# Any app that uses the openai SDK; it names otel_llm nowhere. After its calls it reads its own
# /metrics (what Prometheus would scrape while it runs) into a file for the test.
APP = textwrap.dedent(
    """
    import os, urllib.request
    import openai

    client = openai.OpenAI()
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "Where is my invoice?"}])
    for _ in client.chat.completions.create(model="deepseek-v3.2", stream=True,
                                            messages=[{"role": "user", "content": "Reset my password"}]):
        pass
    port = os.environ.get("OTEL_EXPORTER_PROMETHEUS_PORT", "9464")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        open("metrics.txt", "wb").write(response.read())
    print("app done")
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The console exporter's spans: JSON objects one after another, between other output."""
    decoder, objects, index = json.JSONDecoder(), [], 0
    while (start := text.find("{", index)) != -1:
        try:
            obj, index = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        objects.append(obj)
    return objects


def test_quick_start_as_written_records_spans_and_cost(tmp_path: Path) -> None:
    (block,) = readme_blocks("Quick start")
    checkout = copy_checkout(tmp_path / "otel-llm")
    (checkout / "app.py").write_text(APP)
    (checkout / "quickstart.sh").write_text(block)
    bindir = fresh_venv(tmp_path / "venv")
    with Simulator(config=SimulatorConfig(latency_scale=0)) as sim:
        env = clean_env(bindir, OPENAI_BASE_URL=sim.base_url, OPENAI_API_KEY="sk-quickstart",
                        OTEL_EXPORTER_PROMETHEUS_PORT=str(_free_port()), PIP_DISABLE_PIP_VERSION_CHECK="1")
        done = subprocess.run(["bash", "-e", "quickstart.sh"], cwd=checkout, env=env, capture_output=True,
                              text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "app done" in done.stdout
    assert "not found" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]

    spans = {s["name"]: s["attributes"] for s in _json_objects(done.stdout) if "attributes" in s and "name" in s}
    assert {"chat gpt-4.1", "chat deepseek-v3.2"} <= set(spans)
    assert spans["chat gpt-4.1"]["otel_llm.cost.usd"] > 0
    assert spans["chat deepseek-v3.2"]["gen_ai.response.finish_reasons"] == ["stop"]

    metrics = (checkout / "metrics.txt").read_text()
    cost = [line for line in metrics.splitlines() if line.startswith("otel_llm_cost_USD_total{")]
    assert cost and sum(float(line.rsplit(" ", 1)[1]) for line in cost) > 0
    assert 'service_name="support-bot"' in metrics or "support-bot" in done.stdout


def test_the_stack_sections_exporter_variables_start_the_sdk() -> None:
    """The stack section's block runs docker compose (not here), but its app-side variables must be
    ones the installed SDK can start with: port 4318 is the Collector's OTLP/HTTP receiver."""
    from otel_llm.cli.doctor import installed_components, run_checks

    (block,) = readme_blocks("The telemetry stack")
    env: dict[str, str] = {"OTEL_SERVICE_NAME": "support-bot"}
    for line in block.splitlines():
        if line.startswith("export OTEL_"):
            for word in line.split("#")[0].split()[1:]:
                name, _, value = word.partition("=")
                env[name] = value
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")
    assert env.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "http/protobuf"
    findings = run_checks(env, {"opentelemetry-sdk"}, {"otel_llm"}, lambda h, p: True,
                          components=installed_components())
    assert [f.message for f in findings if f.level == "problem"] == []
