"""End to end, zero-code: an unchanged app under `opentelemetry-instrument`, a local OpenAI-compatible
server on loopback, and the OTLP/HTTP exporter; we decode what reached the OTLP endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_llm.simulator import Simulator, SimulatorConfig

APP = textwrap.dedent(
    """
    import openai, otel_llm
    client = openai.OpenAI()  # base URL and key from the environment, as any app would
    with otel_llm.attributes(user_id="alice", session_id="s-42", team="support"):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "Hello there, how are you?"}])
        for _ in client.chat.completions.create(model="deepseek-v3.2", stream=True,
                                                messages=[{"role": "user", "content": "Stream me a story"}]):
            pass
        client.embeddings.create(model="text-embedding-3-small", input="embed me")
    print("app done")
    """
)


class _Collector(BaseHTTPRequestHandler):
    received: dict[str, list[bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.setdefault(self.path, []).append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_endpoint() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


V1_41 = {"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "gen_ai.client.operation.time_to_first_chunk"}
LATEST = {"gen_ai.client.inference.duration", "gen_ai.client.inference.time_to_first_chunk",
          "gen_ai.client.inference.usage.input_tokens", "gen_ai.client.inference.operation.input_tokens",
          "gen_ai.client.operation.duration"}  # (embeddings stay on operation.duration)


# The standard opt-in variable, as a user sets it: unset, the latest GenAI names, both shapes; and the
# response cache turned on (on openai 1.26 it once made the instrumentor fail to load, which
# opentelemetry-instrument logs at debug level only: the app ran with no telemetry).
@pytest.mark.parametrize(("opt_in", "standard", "absent", "cache"), [
    ("", V1_41, LATEST - V1_41, ""),
    ("http,gen_ai_latest_experimental", LATEST, V1_41 - LATEST, ""),
    ("gen_ai_latest_experimental/dup", V1_41 | LATEST, set(), ""),
    ("", V1_41, LATEST - V1_41, "memory://"),
], ids=["default", "latest", "dup", "response-cache"])
def test_unchanged_app_under_opentelemetry_instrument(tmp_path: Path, otlp_endpoint: ThreadingHTTPServer, opt_in: str,
                                                      standard: set[str], absent: set[str], cache: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    with Simulator(config=SimulatorConfig(latency_scale=0)) as sim:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": sim.base_url,
            "OPENAI_API_KEY": "sk-e2e-SENTINEL-KEY",
            "OTEL_SERVICE_NAME": "e2e-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_endpoint.server_port}",
            "OTEL_LLM_INCLUDE_STREAM_USAGE": "always",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx,requests,urllib3,urllib",
            "OTEL_SEMCONV_STABILITY_OPT_IN": opt_in,
            "OTEL_LLM_RESPONSE_CACHE": cache,
        }
        bindir = Path(sys.executable).parent
        done = subprocess.run([str(bindir / "opentelemetry-instrument"), sys.executable, str(app)], env=env,
                              capture_output=True, text=True, timeout=120)
        served = sim.stats()
    assert done.returncode == 0, done.stderr
    assert "app done" in done.stdout

    received: dict[str, list[bytes]] = otlp_endpoint.received  # type: ignore[attr-defined]
    spans = []
    for body in received.get("/v1/traces", []):
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                spans.extend((ss.scope.name, s) for s in ss.spans)
    ours = {s.name: {a.key: a.value for a in s.attributes} for scope, s in spans if scope == "otel_llm"}
    assert set(ours) == {"chat gpt-4.1", "chat deepseek-v3.2", "embeddings text-embedding-3-small"}
    chat = ours["chat gpt-4.1"]
    assert chat["user.id"].string_value == "alice" and chat["session.id"].string_value == "s-42"
    assert chat["gen_ai.provider.name"].string_value == "openai_compatible"
    assert chat["otel_llm.cost.usd"].double_value > 0
    streamed = ours["chat deepseek-v3.2"]
    assert streamed["gen_ai.usage.output_tokens"].int_value > 0

    # tokens on spans equal what the server says it served
    sent_in = sum(int(a["gen_ai.usage.input_tokens"].int_value) for a in ours.values())
    assert sent_in == sum(m["prompt_tokens"] for m in served["models"].values())

    for attrs in ours.values():  # the draft cost attributes: in the opt-in modes, equal to ours
        draft = attrs.get("gen_ai.usage.cost.amount")
        assert (draft is not None) == (opt_in != ""), attrs.keys()
        if draft is not None:
            assert draft.double_value == attrs["otel_llm.cost.usd"].double_value
            assert attrs["gen_ai.usage.cost.currency"].string_value == "USD"
            assert attrs["gen_ai.usage.cost.source"].string_value == "local"

    metric_names = set()
    cost_total = 0.0
    chat_input = 0
    for body in received.get("/v1/metrics", []):
        request = ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    metric_names.add(metric.name)
                    if metric.name == "otel_llm.cost":
                        cost_total = max(cost_total, sum(p.as_double for p in metric.sum.data_points))
                    if metric.name == "gen_ai.client.inference.usage.input_tokens":
                        chat_input = max(chat_input, sum(p.as_int for p in metric.sum.data_points))
    assert standard | {"otel_llm.cost", "otel_llm.tokens", "otel_llm.calls"} <= metric_names
    assert not absent & metric_names
    if "gen_ai.client.inference.usage.input_tokens" in standard:  # the chats' input, as the server served it
        served_chat = sum(m["prompt_tokens"] for name, m in served["models"].items() if not name.startswith("text-embedding"))
        assert chat_input == served_chat > 0
    span_cost = sum(a["otel_llm.cost.usd"].double_value for a in ours.values() if "otel_llm.cost.usd" in a)
    assert cost_total == pytest.approx(span_cost, rel=1e-9)
    everything = b"".join(b for bodies in received.values() for b in bodies)
    assert b"SENTINEL" not in everything
